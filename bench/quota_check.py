"""What the daily quota check adds to a post, and what the logout deny-list
adds to a request with a token: each step timed alone, one after another
(a post waits for both of the quota's round trips), against the PostgreSQL
and Redis of 127.0.0.1 (a database of its own, dropped afterwards).

The baselines, timed in the same run through the same connections, are the
cheapest round trip to each server (`SELECT 1`, `PING`); each step is also
printed as a ratio of its server's baseline, so runs on a busy machine
compare.

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


BATCH = 100


async def timed(calls: int, steps: dict) -> dict[str, list[float]]:
    """Each step's times in µs; the steps take turns in batches, so that all
    see the same moments of a busy machine."""
    for step in steps.values():
        for _ in range(50):  # warm the pool, the script cache and the plan
            await step()
    took: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(max(1, calls // BATCH)):
        for name, step in steps.items():
            for _ in range(BATCH):
                start = time.perf_counter()
                await step()
                took[name].append((time.perf_counter() - start) * 1e6)
    return took


def line(name: str, took: list[float], base: list[float]) -> str:
    cut, base_p50 = statistics.quantiles(took, n=100), statistics.median(base)
    return (f"{name:<44} mean {statistics.fmean(took):7.0f} µs   p50 {cut[49]:7.0f} µs   p99 {cut[98]:7.0f} µs"
            f"   p50/baseline p50 {cut[49] / base_p50:5.2f}x")


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
        took = await timed(calls, {
            "baseline: SELECT 1 (PostgreSQL)": lambda: db.fetchval("SELECT 1"),
            "baseline: PING (Redis)": client.ping,
            "quota: the user's own limits (PostgreSQL)": lambda: users.quota_of(db, user["id"]),
            "quota: check and count a message (Redis)": lambda: quotas.take_message(user["id"], limits),
            "logout: is the token denied (Redis)": lambda: client.exists(keys.revoked_token(token_id)),
        })
        for name, times in took.items():
            base = took["baseline: SELECT 1 (PostgreSQL)" if "PostgreSQL" in name else "baseline: PING (Redis)"]
            print(line(name, times, base))
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
