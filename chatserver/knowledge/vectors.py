"""Whether passages get vectors, decided once at start-up.

Vectors need both an embedding model (embedders.choose) and PostgreSQL's
pgvector extension. The extension cannot be required by a migration (many
PostgreSQL servers lack it, and one may gain it later), so every start tries
`CREATE EXTENSION IF NOT EXISTS vector` and the vector table; where either
is missing the log says vectors are off and retrieval is full-text alone.
"""

from __future__ import annotations

import dataclasses
import logging

import aiohttp
from aiohttp import web

from chatserver import appkeys
from chatserver.config import Settings
from chatserver.data import passages
from chatserver.db import Database
from chatserver.knowledge.embedders import Embedder, EmbeddingsUnavailable, choose

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Vectors:
    # None: full-text alone
    embedder: Embedder | None
    status: str  # the start-up log's words

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
    return Vectors(embedder, f"on (pgvector {version}), embedded by {embedder.describe()}")


async def vectors_ctx(app: web.Application):
    async with aiohttp.ClientSession() as session:
        app[VECTORS] = await decide_for(app[appkeys.SETTINGS], app[appkeys.DB], session)
        log.info("vectors: %s", app[VECTORS].status)
        yield
