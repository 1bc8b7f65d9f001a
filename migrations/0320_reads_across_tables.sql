-- account_of(user) and chat_answer_settings(chat): a row of one table for a statement over another, so that one
-- round trip does what two did: an API key's lookup reads its account (whether it is active, and its own quotas), and
-- the generation job reads the answer with its chat's settings. A missing row reads as nulls.
-- depends: 0310_message_drafts

CREATE FUNCTION account_of(account uuid, OUT active boolean, OUT quota_tokens_per_day bigint,
                           OUT quota_messages_per_day bigint)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT disabled_at IS NULL, quota_tokens_per_day, quota_messages_per_day FROM users WHERE id = account $$;

CREATE FUNCTION chat_answer_settings(chat uuid, OUT model text, OUT system_prompt text, OUT temperature double precision,
                                     OUT max_tokens integer, OUT tools text[], OUT knowledge uuid[])
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT model, system_prompt, temperature, max_tokens, tools, knowledge FROM chats WHERE id = chat $$;
