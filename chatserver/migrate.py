"""Applying migrations/ with yoyo, under yoyo's lock so that processes
starting together against one database take turns."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from yoyo import get_backend, read_migrations

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def apply_migrations(dsn: str) -> int:
    """Apply every pending migration; return how many were applied."""
    backend = get_backend(dsn)
    try:
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock(timeout=120):
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        if pending:
            log.info("applied %d migration(s): %s", len(pending), ", ".join(m.id for m in pending))
        return len(pending)
    finally:
        backend.connection.close()


async def apply_migrations_async(dsn: str) -> int:
    return await asyncio.to_thread(apply_migrations, dsn)

