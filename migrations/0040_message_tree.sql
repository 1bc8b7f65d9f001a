-- Messages as a tree: each message's parent, each chat's shown leaf; linear chats become one branch.
-- depends: 0003_files_preview_retry

ALTER TABLE messages ADD COLUMN parent_id uuid REFERENCES messages (id) ON DELETE CASCADE;
-- the leaf of the branch the chat shows (no foreign key: deleting a chat
-- cascades to its messages, which must not have to update the chat first)
ALTER TABLE chats ADD COLUMN shown_leaf uuid;

-- an answer follows its question; a user message follows the message before it,
-- so an answer that a regenerated one replaced becomes that one's sibling
UPDATE messages m
SET parent_id = CASE
    WHEN m.role = 'assistant' AND m.reply_to IS NOT NULL THEN m.reply_to
    ELSE (SELECT p.id FROM messages p
          WHERE p.chat_id = m.chat_id AND p.position < m.position
          ORDER BY p.position DESC LIMIT 1)
END;

-- the shown branch is the one the conversation went on in: the deepest leaf,
-- the newest when several are as deep (a regenerated last answer)
WITH RECURSIVE depth AS (
    SELECT id, chat_id, position, 1 AS depth FROM messages WHERE parent_id IS NULL
    UNION ALL
    SELECT m.id, m.chat_id, m.position, d.depth + 1
    FROM messages m JOIN depth d ON m.parent_id = d.id
)
UPDATE chats c SET shown_leaf = deepest.id
FROM (SELECT DISTINCT ON (chat_id) chat_id, id FROM depth ORDER BY chat_id, depth DESC, position DESC) deepest
WHERE deepest.chat_id = c.id;

-- siblings share a parent; a chat's first messages share the chat as their parent
CREATE INDEX messages_siblings ON messages (chat_id, (coalesce(parent_id, chat_id)), position);
