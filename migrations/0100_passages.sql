-- Passages: the pieces a file's text is split into for retrieval, each
-- knowing its file, its page (PDFs) and its heading (Markdown, DOCX), and
-- searchable by its words. Their vectors live in passage_vectors, which the
-- server creates at start-up where PostgreSQL has the pgvector extension
-- (chatserver/knowledge/vectors.py): a migration cannot wait for an extension
-- added later. A chat's knowledge is the files searched for each of its answers.
-- depends: 0091_shown_leaf

CREATE TABLE passages (
    id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    file_id  uuid NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ordinal  integer NOT NULL,
    page     integer,
    heading  text,
    text     text NOT NULL,
    search   tsvector GENERATED ALWAYS AS (
        to_tsvector('english', coalesce(heading, '') || ' ' || text)) STORED,
    UNIQUE (file_id, ordinal)
);
CREATE INDEX passages_search ON passages USING gin (search);
CREATE INDEX passages_user ON passages (user_id, file_id);

ALTER TABLE chats ADD COLUMN knowledge uuid[] NOT NULL DEFAULT '{}';
