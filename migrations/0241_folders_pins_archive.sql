-- Organising chats: folders of a user's chats, pinned chats first, archived chats out of the way.
-- depends: 0240_shares

CREATE TABLE folders (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- one folder of a name per user, whatever its case
CREATE UNIQUE INDEX folders_user_name ON folders (user_id, lower(name));

ALTER TABLE chats
    -- deleting a folder moves its chats out of it
    ADD COLUMN folder_id uuid REFERENCES folders (id) ON DELETE SET NULL,
    ADD COLUMN pinned    boolean NOT NULL DEFAULT false,
    ADD COLUMN archived  boolean NOT NULL DEFAULT false;
-- the chat list: archived or not, pinned first, then most recently active, walked by (pinned, updated_at, id)
CREATE INDEX chats_user_listing ON chats (user_id, archived, pinned, updated_at, id);
CREATE INDEX chats_folder ON chats (folder_id) WHERE folder_id IS NOT NULL;
