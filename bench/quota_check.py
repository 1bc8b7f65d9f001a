"""What the daily quota check adds to a post, and what the logout deny-list
adds to a request with a token: each step timed alone, one after another
(a post waits for both of the quota's round trips), against the PostgreSQL
and Redis of 127.0.0.1 (a database of its own, dropped afterwards).

    .venv/bin/python bench/quota_check.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import redis.asyncio as redis_async

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chatserver.config import load_settings  # noqa: E402
from chatserver.data import users  # noqa: E402
from chatserver.db import create_database_if_missing, open_database  # noqa: E402
from chatserver.live.quotas import Limits, Quotas  # noqa: E402
from chatserver.migrate import apply_migrations  # noqa: E402
from chatserver.redis_keys import Keys  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def timed(calls: int, step) -> list[float]:
    for _ in range(50):  # warm the pool, the script cache and the plan
        await step()
    took = []
    for _ in range(calls):
        start = time.perf_counter()
        await step()
        took.append((time.perf_counter() - start) * 1e6)
    return took


def line(name: str, took: list[float]) -> str:
    cut = statistics.quantiles(took, n=100)
    return f"{name:<44} mean {statistics.fmean(took):7.0f} µs   p50 {cut[49]:7.0f} µs   p99 {cut[98]:7.0f} µs"


async def main(calls: int) -> None:
    name = f"chatserver_bench_quota_{uuid.uuid4().hex[:8]}"
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    create_database_if_missing(dsn)
    apply_migrations(dsn)
    settings = load_settings(environ={"DATABASE_URL": dsn, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    db = await open_database(dsn, settings.replace(DB_POOL_MIN=1, DB_POOL_MAX=2))
    client = redis_async.Redis.from_url("redis://127.0.0.1:6379/0")
    keys = Keys(f"bench-{uuid.uuid4().hex[:8]}")
    try:
        user = await users.insert(db, f"bench-{uuid.uuid4().hex[:8]}@example.com", "!", "bench")
        quotas = Quotas(client, keys)
        limits = Limits(tokens=10**12, messages=10**12)
        token_id = uuid.uuid4()
        results = [
            line("quota: the user's own limits (PostgreSQL)", await timed(
                calls, lambda: users.quota_of(db, user["id"]))),
            line("quota: check and count a message (Redis)", await timed(
                calls, lambda: quotas.take_message(user["id"], limits))),
            line("logout: is the token denied (Redis)", await timed(
                calls, lambda: client.exists(keys.revoked_token(token_id)))),
        ]
        print("\n".join(results))
    finally:
        await client.delete(*[k async for k in client.scan_iter(f"{keys.prefix}:*")] or ["-"])
        await client.aclose()
        db.pool.close()
        await db.pool.wait_closed()
        conn = psycopg2.connect(ADMIN)
        conn.autocommit = True
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000)
    asyncio.run(main(parser.parse_args().calls))
