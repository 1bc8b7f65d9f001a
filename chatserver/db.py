"""The PostgreSQL pool and the few helpers every data module uses."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import aiopg
import orjson
import psycopg2
import psycopg2.errors
import psycopg2.extras
from psycopg2 import sql
from psycopg2.extensions import make_dsn, parse_dsn, register_adapter

from chatserver.config import ConfigError, Settings

log = logging.getLogger(__name__)

# jsonb parameters are passed as Json(...) and come back as Python objects, parsed by orjson
register_adapter(dict, psycopg2.extras.Json)
psycopg2.extras.register_default_json(loads=orjson.loads, globally=True)
psycopg2.extras.register_default_jsonb(loads=orjson.loads, globally=True)
psycopg2.extras.register_uuid()


def settings_dsn(settings: Settings) -> str:
    """A libpq URL for the configured external server."""
    if settings.DATABASE_URL:
        return settings.DATABASE_URL
    auth = quote(settings.DB_USER, safe="")
    if settings.DB_PASSWORD:
        auth += ":" + quote(settings.DB_PASSWORD, safe="")
    return f"postgresql://{auth}@{settings.DB_HOST}:{settings.DB_PORT}/{quote(settings.DB_NAME, safe='')}"


def create_database_if_missing(dsn: str) -> None:
    """Create the DSN's database through the server's `postgres` database when
    it does not exist yet. A failure is one ConfigError naming DB_NAME, not a
    traceback; any other connection problem is left to the caller."""
    name = parse_dsn(dsn).get("dbname")
    try:
        psycopg2.connect(dsn).close()
        return
    except psycopg2.OperationalError as exc:
        if not name or f'database "{name}" does not exist' not in str(exc):
            raise
    try:
        conn = psycopg2.connect(make_dsn(dsn, dbname="postgres"))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
    except (psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
        return  # another process starting at the same time made it (the catalog's index may notice first)
    except psycopg2.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ConfigError(f"DB_NAME: database {name!r} does not exist and could not be created ({reason})") from None
    log.info("created database %s", name)


def as_dicts(cur, rows: list[tuple]) -> list[dict]:
    """Rows as dicts; zip is several times faster than psycopg2's RealDictCursor."""
    names = [column[0] for column in cur.description]
    return [dict(zip(names, row, strict=True)) for row in rows]


class NoAnswer(psycopg2.OperationalError):
    """PostgreSQL accepted a connection but did not answer in time (hung or
    swamped): an outage like an unreachable server (outage.py), not a bug."""


class Database:
    """Thin wrapper over an aiopg pool; every query returns dict rows.

    The pool's timeout (DB_TIMEOUT_SECONDS) bounds getting a connection and
    each statement; aiopg closes a connection whose statement ran out of time."""

    def __init__(self, pool: aiopg.Pool):
        self.pool = pool

    @contextlib.asynccontextmanager
    async def cursor(self, factory=None, timeout: float | None = None) -> AsyncIterator[aiopg.Cursor]:
        """`timeout`: the longest one statement may take, when not DB_TIMEOUT_SECONDS."""
        try:
            async with self.pool.acquire() as conn:
                async with conn.cursor(cursor_factory=factory, timeout=timeout) as cur:
                    yield cur
        except TimeoutError:
            raise NoAnswer(f"PostgreSQL did not answer within {timeout or self.pool.timeout:g} s") from None

    @contextlib.asynccontextmanager
    async def transaction(self, timeout: float | None = None) -> AsyncIterator[aiopg.Cursor]:
        """A cursor inside BEGIN/COMMIT whose rows are dicts (`timeout` as for cursor)."""
        async with self.cursor(psycopg2.extras.RealDictCursor, timeout) as cur:
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
        dsn, minsize=settings.DB_POOL_MIN, maxsize=settings.DB_POOL_MAX, timeout=settings.DB_TIMEOUT_SECONDS
    )
    return Database(pool)
