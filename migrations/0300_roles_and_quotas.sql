-- Roles (nobody is admin until the operator says so) and per-user quotas (null: the server's defaults).
-- depends: 0243_presets

ALTER TABLE users
    ADD COLUMN role                   text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    ADD COLUMN quota_tokens_per_day   bigint CHECK (quota_tokens_per_day >= 0),
    ADD COLUMN quota_messages_per_day bigint CHECK (quota_messages_per_day >= 0);

-- last_active_at of the admin list: a user's newest message
CREATE INDEX messages_user_recent ON messages (user_id, created_at DESC);
