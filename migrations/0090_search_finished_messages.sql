-- A streaming answer's text is stored again at every checkpoint (about once a
-- second), and a generated column is computed again at every UPDATE: the
-- search vector of the whole text so far, each time, made an answer's
-- checkpoints cost PostgreSQL time growing with the square of its length.
-- Only a finished message is searchable; its vector is computed once.
-- depends: 0080_imports

DROP INDEX IF EXISTS messages_search;
ALTER TABLE messages DROP COLUMN search;
ALTER TABLE messages ADD COLUMN search tsvector GENERATED ALWAYS AS (
    CASE WHEN status IN ('complete', 'failed', 'cancelled') THEN to_tsvector('english', content) END) STORED;
CREATE INDEX messages_search ON messages USING gin (search);
