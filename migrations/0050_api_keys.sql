-- API keys: a user's long random keys for programmatic access, stored as a keyed hash.
-- depends: 0003_files_preview_retry

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    -- the first characters of the key, so a user can tell keys apart in a list
    prefix       text NOT NULL,
    -- HMAC-SHA256 of the whole key: every request finds its key by this, in one index probe
    key_hash     bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_used_at timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at DESC);
