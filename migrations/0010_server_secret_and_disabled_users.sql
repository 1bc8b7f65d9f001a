-- The generated JWT secret (one row, shared by every process on this database) and disabled accounts.
-- depends: 0003_files_preview_retry

CREATE TABLE server_secret (
    -- a boolean key that can only be true: the table holds at most one row
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

ALTER TABLE users ADD COLUMN disabled_at timestamptz;
