"""Finding the passages that answer a question: one query ranking the
user's passages by their words (PostgreSQL full-text search) and, where
vectors are on, by nearness to the question's vector, the two rankings fused
by reciprocal rank fusion (data/passages.py)."""

from __future__ import annotations

import uuid

from chatserver.data import files, passages
from chatserver.db import Database
from chatserver.knowledge.vectors import Vectors


async def find_passages(db: Database, vectors: Vectors, user_id: uuid.UUID, q: str,
                        file_ids: list[uuid.UUID] | None, limit: int) -> list[dict]:
    """The user's best passages for `q` (only in `file_ids` unless None), best
    first: file_id, file_name, page, heading, passage_id, text, score."""
    if file_ids is not None and not file_ids:
        return []
    vector = await vectors.of_query(q)
    model = vectors.embedder.model if vectors.embedder is not None else ""
    rows = await passages.search(db, user_id, q, file_ids, limit, vector=vector, model=model)
    names = await files.names(db, user_id, list({r["file_id"] for r in rows}))
    return [{"file_id": r["file_id"], "file_name": names.get(r["file_id"], ""), "page": r["page"],
             "heading": r["heading"], "passage_id": r["id"], "text": r["text"], "score": r["score"]}
            for r in rows if r["file_id"] in names]
