-- tool_calls: the calls of a client's function tools an answer ended with (the /v1 APIs return them)
-- depends: 0095_responses

ALTER TABLE messages ADD COLUMN tool_calls jsonb;
