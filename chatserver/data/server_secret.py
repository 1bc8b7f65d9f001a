"""The `server_secret` table: the JWT secret generated when none is configured."""

from __future__ import annotations

from chatserver.db import Database


async def keep_first(db: Database, candidate: str) -> tuple[str, bool]:
    """Store `candidate` unless a secret is stored already; return the stored
    one and whether it was `candidate`. Processes starting together all get
    the first one written (the primary key settles the race)."""
    inserted = await db.fetchval(
        "INSERT INTO server_secret (secret) VALUES (%s) ON CONFLICT (id) DO NOTHING RETURNING secret",
        (candidate,))
    if inserted is not None:
        return inserted, True
    return await db.fetchval("SELECT secret FROM server_secret WHERE id"), False
