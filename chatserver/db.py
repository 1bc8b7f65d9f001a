"""The PostgreSQL pool and the few helpers every data module uses."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, AsyncIterator, Sequence
from urllib.parse import quote

import aiopg
import psycopg2.extras
from psycopg2.extensions import register_adapter

from chatserver.config import Settings

log = logging.getLogger(__name__)

# jsonb parameters are passed as Json(...) and come back as Python objects
register_adapter(dict, psycopg2.extras.Json)
psycopg2.extras.register_uuid()


def settings_dsn(settings: Settings) -> str:
    """A libpq URL for the configured external server."""
    if settings.DATABASE_URL:
        return settings.DATABASE_URL
    auth = quote(settings.DB_USER, safe="")
    if settings.DB_PASSWORD:
        auth += ":" + quote(settings.DB_PASSWORD, safe="")
    return f"postgresql://{auth}@{settings.DB_HOST}:{settings.DB_PORT}/{quote(settings.DB_NAME, safe='')}"


def as_dicts(cur, rows: list[tuple]) -> list[dict]:
    """Rows as dicts; zip is several times faster than psycopg2's RealDictCursor."""
    names = [column[0] for column in cur.description]
    return [dict(zip(names, row)) for row in rows]


class Database:
    """Thin wrapper over an aiopg pool; every query returns dict rows."""

    def __init__(self, pool: aiopg.Pool):
        self.pool = pool

    @contextlib.asynccontextmanager
    async def cursor(self, factory=None) -> AsyncIterator[aiopg.Cursor]:
        async with self.pool.acquire() as conn:
            async with conn.cursor(cursor_factory=factory) as cur:
                yield cur

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiopg.Cursor]:
        """A cursor inside BEGIN/COMMIT whose rows are dicts."""
        async with self.cursor(psycopg2.extras.RealDictCursor) as cur:
            async with cur.begin():
                yield cur

    async def fetchrow(self, sql: str, params: Sequence | dict = ()) -> dict | None:
        async with self.cursor() as cur:
            await cur.execute(sql, params)
            row = await cur.fetchone()
            return as_dicts(cur, [row])[0] if row is not None else None

    async def fetch(self, sql: str, params: Sequence | dict = ()) -> list[dict]:
        async with self.cursor() as cur:
            await cur.execute(sql, params)
            return as_dicts(cur, await cur.fetchall())

    async def execute(self, sql: str, params: Sequence | dict = ()) -> int:
        async with self.cursor() as cur:
            await cur.execute(sql, params)
            return cur.rowcount

    async def fetchval(self, sql: str, params: Sequence | dict = ()) -> Any:
        row = await self.fetchrow(sql, params)
        return next(iter(row.values())) if row else None


async def open_database(dsn: str, settings: Settings) -> Database:
    pool = await aiopg.create_pool(
        dsn, minsize=settings.DB_POOL_MIN, maxsize=settings.DB_POOL_MAX, timeout=30
    )
    return Database(pool)
