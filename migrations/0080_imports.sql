-- Imports run as jobs: one row per uploaded file, with its progress and its result.
-- depends: 0050_api_keys

CREATE TABLE imports (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status       text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    -- conversations in the file, known once it is read
    total        integer,
    done         integer NOT NULL DEFAULT 0,
    imported     integer,
    skipped      integer,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX imports_user ON imports (user_id);
