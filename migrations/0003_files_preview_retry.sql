-- Files: whether a failed preview may be tried again, and how often housekeeping did.
-- depends: 0001_initial

ALTER TABLE files
    ADD COLUMN error_temporary boolean NOT NULL DEFAULT false,
    ADD COLUMN preview_retries integer NOT NULL DEFAULT 0;
-- housekeeping's two questions: which failures to retry, which thumbnails are referenced
CREATE INDEX files_retryable ON files (id) WHERE status = 'failed' AND error_temporary;
CREATE INDEX files_preview_image ON files (preview_image) WHERE preview_image IS NOT NULL;
