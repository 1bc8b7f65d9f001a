-- Users, chats, messages and files.
-- depends:

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    password_hash text NOT NULL,
    display_name  text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE chats (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- the chat list: most recently active first, walked by (updated_at, id)
CREATE INDEX chats_user_activity ON chats (user_id, updated_at DESC, id DESC);

CREATE TABLE messages (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- total order inside a chat even when two rows share a timestamp
    position     bigint GENERATED ALWAYS AS IDENTITY,
    chat_id      uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('user', 'assistant')),
    content      text NOT NULL DEFAULT '',
    status       text NOT NULL CHECK (status IN ('pending', 'streaming', 'complete', 'failed', 'cancelled')),
    sources      jsonb NOT NULL DEFAULT '[]'::jsonb,
    file_ids     uuid[] NOT NULL DEFAULT '{}',
    error        text,
    -- an assistant message answers this user message
    reply_to     uuid REFERENCES messages (id) ON DELETE CASCADE,
    -- set on an answer that a regenerated one replaced: it leaves the AI history
    superseded   boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    completed_at timestamptz,
    search       tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);
CREATE INDEX messages_chat_position ON messages (chat_id, position);
CREATE INDEX messages_search ON messages USING gin (search);
CREATE INDEX messages_unfinished ON messages (status) WHERE status IN ('pending', 'streaming');

CREATE TABLE files (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id       uuid REFERENCES chats (id) ON DELETE CASCADE,
    name          text NOT NULL,
    storage_name  text NOT NULL UNIQUE,
    size          bigint NOT NULL,
    sha256        text NOT NULL,
    content_type  text NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processing', 'ready', 'failed')),
    text_content  text,
    preview_text  text,
    preview_image text,
    error         text,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    processed_at  timestamptz,
    search        tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(text_content, ''))) STORED
);
CREATE INDEX files_user ON files (user_id, created_at DESC);
CREATE INDEX files_chat ON files (chat_id);
CREATE INDEX files_search ON files USING gin (search);
