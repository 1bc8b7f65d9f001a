-- Per-chat model settings; per-answer model, finish reason, token usage and reasoning text.
-- depends: 0003_files_preview_retry

ALTER TABLE chats
    ADD COLUMN model         text,
    ADD COLUMN system_prompt text,
    ADD COLUMN temperature   double precision,
    ADD COLUMN max_tokens    integer;

ALTER TABLE messages
    ADD COLUMN model         text,
    ADD COLUMN finish_reason text,
    ADD COLUMN usage         jsonb,
    ADD COLUMN reasoning     text NOT NULL DEFAULT '';
-- the usage report: a user's answers by day
CREATE INDEX messages_usage ON messages (user_id, completed_at) WHERE role = 'assistant' AND usage IS NOT NULL;
