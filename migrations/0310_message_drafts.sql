-- A streaming answer's text so far, as the pieces its checkpoints added: each
-- checkpoint inserts only what is new since the last one, where rewriting
-- messages.content wrote the whole text each time (PostgreSQL writes a changed
-- column whole, however little of it changed), so an answer's writes grew with
-- the square of its length. The final write stores the text in messages and
-- deletes its pieces.
-- depends: 0301_oidc_accounts

CREATE TABLE message_drafts (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    kind       "char" NOT NULL,   -- 'c' the content, 'r' the reasoning
    at         integer NOT NULL,  -- where the piece starts in the text, in UTF-8 bytes
    piece      text NOT NULL,
    PRIMARY KEY (message_id, kind, at)
);

-- the text so far of one kind of an unfinished answer: its pieces in order
CREATE FUNCTION message_draft(message uuid, draft_kind "char") RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg(piece, '' ORDER BY at), '') FROM message_drafts
    WHERE message_id = message AND kind = draft_kind
$$;

-- true while the answer is unfinished, holding a share lock on its row until
-- the transaction ends: its final write (which deletes the pieces) waits for a
-- checkpoint adding one, and a checkpoint waiting for the final write adds none
CREATE FUNCTION lock_unfinished_answer(message uuid) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT EXISTS (SELECT 1 FROM messages WHERE id = message AND status IN ('pending', 'streaming') FOR SHARE)
$$;

-- an answer's pieces go with its final write (its text is then stored whole);
-- a VOLATILE function's DELETE sees the pieces of a checkpoint that the final
-- write's UPDATE waited for
CREATE FUNCTION drop_message_drafts() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    DELETE FROM message_drafts WHERE message_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_drop_drafts AFTER UPDATE OF status ON messages FOR EACH ROW
    WHEN (OLD.status IN ('pending', 'streaming') AND NEW.status NOT IN ('pending', 'streaming'))
    EXECUTE FUNCTION drop_message_drafts();
