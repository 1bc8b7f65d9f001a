"""The `passages` table, and `passage_vectors` beside it where PostgreSQL has
pgvector: a file's text cut for retrieval, and the ranking of passages for a
question (full-text and vector ranks fused by reciprocal rank fusion)."""

from __future__ import annotations

import hashlib
import uuid

import psycopg2.errors

from chatserver.db import Database

# how far down each ranking fusion looks, and RRF's damping constant (the
# usual 60: a passage first in one ranking and absent from the other still
# loses to one that both rank high)
DEPTH = 50
RRF_K = 60
COLUMNS = "p.id, p.file_id, p.page, p.heading, p.ordinal, p.text"
# any word of the question counts; the ranking rewards passages holding more of them
ANY_WORD = "replace(plainto_tsquery('english', %(q)s)::text, '&', '|')::tsquery"
# candidates an HNSW index scan looks at (pgvector's default, 40, would cut
# the vector ranking short of DEPTH); the user's own are kept from them
EF_SEARCH = 4 * DEPTH
VECTOR_TABLE = """
    CREATE TABLE IF NOT EXISTS passage_vectors (
        passage_id uuid PRIMARY KEY REFERENCES passages (id) ON DELETE CASCADE,
        model      text NOT NULL,
        embedding  vector NOT NULL
    )
"""


async def replace(db: Database, file_id: uuid.UUID, user_id: uuid.UUID, rows: list[tuple]) -> bool:
    """Make (ordinal, page, heading, text) rows the file's passages; False when the file is gone."""
    try:
        async with db.transaction() as cur:
            await cur.execute("DELETE FROM passages WHERE file_id = %s", (file_id,))
            if rows:
                ordinals, pages, headings, texts = (list(column) for column in zip(*rows, strict=True))
                await cur.execute(
                    """
                    INSERT INTO passages (file_id, user_id, ordinal, page, heading, text)
                    SELECT %s, %s, * FROM unnest(%s::int[], %s::int[], %s::text[], %s::text[])
                    """,
                    (file_id, user_id, ordinals, pages, headings, texts))
    except psycopg2.errors.ForeignKeyViolation:
        return False
    return True


async def search(db: Database, user_id: uuid.UUID, q: str, file_ids: list[uuid.UUID] | None, limit: int, *,
                 text: bool = True, vector: list[float] | None = None, model: str = "") -> list[dict]:
    """The user's passages best matching `q` (by its words when `text`, by
    nearness to `vector` when given, fused when both), only in `file_ids`
    unless it is None; COLUMNS and score, best first."""
    mine = "p.user_id = %(user)s AND (%(files)s::uuid[] IS NULL OR p.file_id = ANY(%(files)s::uuid[]))"
    rankings = []
    if text:
        rankings.append(f"""
            SELECT p.id, row_number() OVER (ORDER BY ts_rank(p.search, q.q) DESC, p.id) AS r
            FROM passages p, (SELECT {ANY_WORD} AS q) q
            WHERE {mine} AND p.search @@ q.q ORDER BY r LIMIT %(depth)s""")
    if vector is not None:
        # the shape index_vectors' index serves (ORDER BY its expression LIMIT), where
        # the planner finds it cheaper than measuring all of the user's vectors
        rankings.append(f"""
            SELECT id, row_number() OVER (ORDER BY d, id) AS r FROM (
                SELECT p.id, v.embedding::vector({len(vector)}) <=> %(vector)s::vector({len(vector)}) AS d
                FROM passage_vectors v JOIN passages p ON p.id = v.passage_id
                WHERE {mine} AND v.model = %(model)s ORDER BY d LIMIT %(depth)s) nearest""")
    union = " UNION ALL ".join(f"({ranking})" for ranking in rankings)
    # one statement string is one transaction: SET LOCAL holds for the query alone
    setting = f"SET LOCAL hnsw.ef_search = {EF_SEARCH};" if vector is not None else ""
    return await db.fetch(
        f"""{setting}
        WITH fused AS (SELECT id, sum(1.0 / (%(k)s + r))::float AS score FROM ({union}) ranks GROUP BY id)
        SELECT {COLUMNS}, fused.score FROM fused JOIN passages p ON p.id = fused.id
        ORDER BY fused.score DESC, p.file_id, p.ordinal
        LIMIT %(limit)s
        """,
        {"user": user_id, "files": file_ids, "q": q, "depth": DEPTH, "k": RRF_K, "limit": limit,
         "vector": _literal(vector) if vector is not None else None, "model": model})


async def of_file(db: Database, file_id: uuid.UUID) -> list[dict]:
    """The file's passages in reading order."""
    return await db.fetch(f"SELECT {COLUMNS} FROM passages p WHERE p.file_id = %s ORDER BY p.ordinal", (file_id,))


async def enable_vectors(db: Database) -> str | None:
    """pgvector's version once the extension and the vector table exist, or
    None when this PostgreSQL cannot have them (not installed, no right to)."""
    try:
        await db.execute("CREATE EXTENSION IF NOT EXISTS vector")
        await db.execute(VECTOR_TABLE)
    except psycopg2.Error:
        return None
    return await db.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")


async def index_vectors(db: Database, model: str, dimensions: int, timeout: float) -> None:
    """An HNSW index (cosine distance) on `model`'s vectors, once, whoever asks
    first. The column has no dimensions (models differ), an index needs them:
    it indexes the vectors cast to `dimensions`, in the rows of `model` alone."""
    name = "passage_vectors_hnsw_" + hashlib.sha256(f"{model}/{dimensions}".encode()).hexdigest()[:16]
    async with db.transaction(timeout) as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
        await cur.execute(f"""
            CREATE INDEX IF NOT EXISTS {name} ON passage_vectors
            USING hnsw ((embedding::vector({int(dimensions)})) vector_cosine_ops) WHERE model = %s""", (model,))


async def vector_dimensions(db: Database, model: str) -> int | None:
    """The dimensions of `model`'s stored vectors (None: none stored)."""
    return await db.fetchval("SELECT vector_dims(embedding) FROM passage_vectors WHERE model = %s LIMIT 1", (model,))


async def without_vectors(db: Database, model: str, limit: int, file_id: uuid.UUID | None = None) -> list[dict]:
    """Passages (of one file, or all) not yet embedded by `model`: id, text."""
    return await db.fetch(
        """
        SELECT p.id, p.text FROM passages p
        LEFT JOIN passage_vectors v ON v.passage_id = p.id AND v.model = %(model)s
        WHERE v.passage_id IS NULL AND (%(file)s::uuid IS NULL OR p.file_id = %(file)s)
        ORDER BY p.file_id, p.ordinal
        LIMIT %(limit)s
        """,
        {"model": model, "file": file_id, "limit": limit})


async def file_ids(db: Database) -> list[uuid.UUID]:
    """The files that have passages."""
    return [r["file_id"] for r in await db.fetch("SELECT DISTINCT file_id FROM passages")]


async def store_vectors(db: Database, model: str, vectors: dict[uuid.UUID, list[float]]) -> None:
    """Keep each passage's vector by `model`, replacing one by another model;
    passages deleted meanwhile are skipped."""
    if not vectors:
        return
    await db.execute(
        """
        INSERT INTO passage_vectors (passage_id, model, embedding)
        SELECT v.id, %s, v.e::vector FROM unnest(%s::uuid[], %s::text[]) AS v(id, e)
        JOIN passages p ON p.id = v.id
        ON CONFLICT (passage_id) DO UPDATE SET model = excluded.model, embedding = excluded.embedding
        """,
        (model, list(vectors), [_literal(v) for v in vectors.values()]))


async def drop_other_vectors(db: Database, model: str) -> int:
    """Forget vectors made by any model but `model` (they cannot be compared with its)."""
    return await db.execute("DELETE FROM passage_vectors WHERE model <> %s", (model,))


async def vector_count(db: Database, model: str) -> int:
    return await db.fetchval("SELECT count(*) FROM passage_vectors WHERE model = %s", (model,))


def _literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"
