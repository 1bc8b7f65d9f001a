-- Share links: a read-only snapshot of a chat's shown branch, reached by an unguessable token.
-- depends: 0091_shown_leaf

CREATE TABLE shares (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- deleting the chat takes its links down with it
    chat_id       uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    -- the link's secret; kept as is so that the owner's list can show the link again
    token         text NOT NULL UNIQUE,
    title         text NOT NULL,
    -- [{"role", "content", "sources": [{"title", "url"}], "created_at"}], oldest first: the snapshot
    messages      jsonb NOT NULL,
    message_count integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX shares_user ON shares (user_id, created_at DESC, id DESC);
CREATE INDEX shares_chat ON shares (chat_id);
