-- responses: what a /v1/responses call asked, for the answer it became (the message it names)
-- depends: 0091_shown_leaf

CREATE TABLE responses (
    message_id   uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id      uuid NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    -- the first message the call added (its earliest input turn); deleting it deletes the turn
    first_id     uuid NOT NULL,
    previous_id  uuid,
    request      jsonb NOT NULL,
    input_items  jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
