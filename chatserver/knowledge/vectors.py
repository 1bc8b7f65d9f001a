"""Whether passages get vectors, decided once at start-up.

Vectors need both an embedding model (embedders.choose) and PostgreSQL's
pgvector extension. The extension cannot be required by a migration (many
PostgreSQL servers lack it, and one may gain it later), so every start tries
`CREATE EXTENSION IF NOT EXISTS vector` and the vector table; where either
is missing the log says vectors are off and retrieval is full-text alone.
The current model's vectors get an approximate-nearest-neighbour index
(HNSW) once their dimensions are known: at start-up from a stored vector, or
when the first ones are stored.
"""

from __future__ import annotations

import dataclasses
import logging

import aiohttp
import psycopg2
from aiohttp import web

from chatserver import appkeys
from chatserver.config import Settings
from chatserver.data import passages
from chatserver.db import Database
from chatserver.knowledge.embedders import Embedder, EmbeddingsUnavailable, choose

log = logging.getLogger(__name__)


# Building the index over vectors stored before it existed may take minutes
# (tens of thousands of vectors); on an empty table it takes no time.
INDEX_BUILD_SECONDS = 3600.0


@dataclasses.dataclass
class Vectors:
    # None: full-text alone
    embedder: Embedder | None
    status: str  # the start-up log's words
    indexed: bool = False

    async def index(self, db: Database, dimensions: int) -> None:
        """Make sure the current model's vectors have their index (once per process)."""
        if self.indexed or self.embedder is None:
            return
        try:
            await passages.index_vectors(db, self.embedder.model, dimensions, INDEX_BUILD_SECONDS)
        except psycopg2.Error as exc:
            # a pgvector older than 0.5 has no HNSW: search measures every vector
            log.warning("vectors: no index for %s's vectors: %s", self.embedder.model, exc)
        self.indexed = True

    async def of_query(self, q: str) -> list[float] | None:
        """The question's vector, or None (vectors off, or the model failing now:
        a search still answers, by words alone)."""
        if self.embedder is None:
            return None
        try:
            return (await self.embedder.embed([q]))[0]
        except EmbeddingsUnavailable as exc:
            log.warning("searching by words alone: %s", exc)
            return None


VECTORS = web.AppKey("vectors", Vectors)


async def decide_for(settings: Settings, db: Database, session: aiohttp.ClientSession) -> Vectors:
    embedder = choose(settings, session)
    if embedder is None:
        return Vectors(None, "off (no embedding model: set EMBEDDINGS_BASE_URL, or install the built-in one; "
                             "see docs/knowledge.md); full-text search alone")
    version = await passages.enable_vectors(db)
    if version is None:
        return Vectors(None, "off (this PostgreSQL has no pgvector extension; see docs/knowledge.md); "
                             "full-text search alone")
    vectors = Vectors(embedder, f"on (pgvector {version}), embedded by {embedder.describe()}")
    dimensions = await passages.vector_dimensions(db, embedder.model)
    if dimensions is not None:
        await vectors.index(db, dimensions)
    return vectors


async def vectors_ctx(app: web.Application):
    async with aiohttp.ClientSession() as session:
        app[VECTORS] = await decide_for(app[appkeys.SETTINGS], app[appkeys.DB], session)
        log.info("vectors: %s", app[VECTORS].status)
        yield
