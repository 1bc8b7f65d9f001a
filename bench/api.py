"""Requests/s of `GET /api/chats/{id}/messages` (50 messages) from a second
process, and the idle server's memory. The load comes from `wrk` when it is
installed (a Python client would share the 2 cores and measure itself), else
from an aiohttp client.

    .venv/bin/python bench/api.py [--seconds 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import rss_kib, start_server  # noqa: E402


async def prepare(base: str) -> tuple[str, dict]:
    """A user with one chat of 50 messages; returns its history URL and auth headers."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/auth/register",
                                json={"email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                                      "password": "benchmark-password"}) as resp:
            token = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        async with session.post(f"{base}/api/chats", json={"title": "bench"}, headers=headers) as resp:
            chat_id = (await resp.json())["id"]
        for i in range(25):  # 25 questions + 25 answers = 50 messages
            async with session.post(f"{base}/api/chats/{chat_id}/messages",
                                    json={"content": f"question {i} " + "lorem ipsum " * 20}, headers=headers):
                pass
        url = f"{base}/api/chats/{chat_id}/messages?limit=50"
        async with session.get(url, headers=headers) as resp:
            assert len((await resp.json())["items"]) == 50
    return url, headers


async def python_load(url: str, headers: dict, seconds: float, concurrency: int) -> tuple[int, list[float]]:
    async with aiohttp.ClientSession() as session:
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds

        async def worker():
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(url, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(latencies), latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    proc, port = start_server()
    try:
        time.sleep(1)
        idle = rss_kib(proc.pid)
        url, headers = asyncio.run(prepare(f"http://127.0.0.1:{port}"))
        print(f"idle server RSS: {idle / 1024:.1f} MiB")
        print(f"GET /api/chats/{{id}}/messages (50 messages), {args.concurrency} connections, {args.seconds:.0f} s:")
        if shutil.which("wrk"):
            out = subprocess.run(["wrk", "-t2", f"-c{args.concurrency}", f"-d{args.seconds:.0f}s", "--latency",
                                  "-H", f"Authorization: {headers['Authorization']}", url],
                                 capture_output=True, text=True, check=True).stdout
            print("  wrk: " + "\n  wrk: ".join(line.strip() for line in out.splitlines()
                                                if line.strip().startswith(("Requests/sec", "50%", "99%", "Non-2xx"))))
        else:
            count, latencies = asyncio.run(python_load(url, headers, args.seconds, args.concurrency))
            latencies.sort()
            print(f"  aiohttp client: {count / args.seconds:.0f} requests/s, "
                  f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
                  f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms")
        print(f"server RSS after load: {rss_kib(proc.pid) / 1024:.1f} MiB")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
