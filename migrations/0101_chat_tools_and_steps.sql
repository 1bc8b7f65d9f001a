-- The tools a chat's answers may call (ids such as builtin:search_chats), and
-- the tool calls an answer made, in call order (docs/tools.md).
-- depends: 0091_shown_leaf

ALTER TABLE chats ADD COLUMN tools text[] NOT NULL DEFAULT '{}';
ALTER TABLE messages ADD COLUMN steps jsonb NOT NULL DEFAULT '[]';
