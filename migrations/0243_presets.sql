-- Presets: a user's named sets of answer settings (model, system prompt, temperature, max tokens,
-- tools and knowledge) that a new chat copies.
-- depends: 0242_message_feedback

CREATE TABLE presets (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    model         text,
    system_prompt text,
    temperature   double precision,
    max_tokens    integer,
    tools         text[] NOT NULL DEFAULT '{}',
    knowledge     text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- one preset of a name per user, whatever its case
CREATE UNIQUE INDEX presets_user_name ON presets (user_id, lower(name));
