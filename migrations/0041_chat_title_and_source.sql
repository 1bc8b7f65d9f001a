-- Chats: whether the title is still to be taken from the first message, and where an imported chat came from.
-- depends: 0040_message_tree

ALTER TABLE chats
    ADD COLUMN auto_title boolean NOT NULL DEFAULT false,
    ADD COLUMN source text;
-- importing the same conversation twice finds it here
CREATE UNIQUE INDEX chats_source ON chats (user_id, source) WHERE source IS NOT NULL;
