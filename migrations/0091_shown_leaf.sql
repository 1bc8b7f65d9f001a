-- shown_leaf(chat, owner): the message a chat shows (the end of its shown branch), if the chat is
-- the owner's; lets a read of the messages table start from it in the same statement.
-- depends: 0090_search_finished_messages

CREATE FUNCTION shown_leaf(chat uuid, owner uuid) RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT shown_leaf FROM chats WHERE id = chat AND user_id = owner $$;
