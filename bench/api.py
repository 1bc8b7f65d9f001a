"""Requests/s of the read endpoints (messages list of 50, chats list, search,
message read), each beside a bare aiohttp handler running the same query
through the same driver (aiopg) with orjson (bench/bare_api.py), in the same
run. The load comes from `wrk` (a Python client would share the 2 cores and
measure itself); the servers are pinned to core 0 and wrk to core 1 when
`taskset` is there.

    .venv/bin/python bench/api.py [--seconds 10] [--concurrency 32] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, rss_kib, server_env, spawn  # noqa: E402

PIN_SERVER = ["taskset", "-c", "0"] if shutil.which("taskset") else []
PIN_LOAD = ["taskset", "-c", "1"] if shutil.which("taskset") else []


async def prepare(base: str) -> dict:
    """A user with 20 chats, one of 50 messages; the URLs of both servers' reads and the auth headers."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/auth/register",
                                json={"email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                                      "password": "benchmark-password"}) as resp:
            body = await resp.json()
        user_id, headers = body["user"]["id"], {"Authorization": f"Bearer {body['access_token']}"}
        for i in range(20):
            async with session.post(f"{base}/api/chats", json={"title": f"bench {i}"}, headers=headers) as resp:
                chat_id = (await resp.json())["id"]
        for i in range(25):  # 25 questions + 25 answers = 50 messages
            async with session.post(f"{base}/api/chats/{chat_id}/messages",
                                    json={"content": f"question {i} " + "lorem ipsum " * 20}, headers=headers):
                pass
        await asyncio.sleep(2)  # the built-in backend answers them all
        async with session.get(f"{base}/api/chats/{chat_id}/messages?limit=50", headers=headers) as resp:
            items = (await resp.json())["items"]
        assert len(items) == 50 and all(m["status"] == "complete" for m in items), "answers not finished"
        leaf, message = items[-1]["id"], items[-2]["id"]
    return {
        "headers": headers,
        "messages list (50)": (f"/api/chats/{chat_id}/messages?limit=50",
                               f"/messages?chat={chat_id}&user={user_id}&leaf={leaf}"),
        "chats list (20)": ("/api/chats", f"/chats?user={user_id}"),
        "search": ("/api/search?q=lorem+ipsum", f"/search?user={user_id}&q=lorem+ipsum"),
        "message read": (f"/api/messages/{message}", f"/message?id={message}"),
    }


def wrk(url: str, headers: dict, seconds: float, concurrency: int) -> tuple[float, str]:
    argv = [*PIN_LOAD, "wrk", "-t1", f"-c{concurrency}", f"-d{seconds:.0f}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    assert "Non-2xx" not in out, out
    rate = float(next(line.split()[1] for line in out.splitlines() if line.strip().startswith("Requests/sec")))
    p50 = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("50%"))
    return rate, p50


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two servers this many times")
    parser.add_argument("--only", default="", help="run only the reads whose name contains this")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/api.py needs wrk (apt-get install wrk)")
    port, bare_port = free_port(), free_port()
    env = server_env(port)
    proc = spawn([*PIN_SERVER, sys.executable, str(ROOT / "run.py")], port, env)
    dsn = f"postgresql://postgres@127.0.0.1:5432/{env['DB_NAME']}"
    bare = spawn([*PIN_SERVER, sys.executable, str(ROOT / "bench" / "bare_api.py"), str(bare_port), dsn], bare_port)
    try:
        time.sleep(1)
        idle = rss_kib(proc.pid)
        plan = uvloop.run(prepare(f"http://127.0.0.1:{port}"))
        headers = plan.pop("headers")
        print(f"idle server RSS: {idle / 1024:.1f} MiB; wrk -c{args.concurrency}, {args.seconds:.0f} s per run")
        print(f"{'read':<20} {'chatserver':>22} {'bare aiohttp+aiopg+orjson':>27} {'ratio':>6}")
        for name, (ours, theirs) in plan.items():
            if args.only not in name:
                continue
            a, b = [], []
            for _ in range(args.rounds):
                a.append(wrk(f"http://127.0.0.1:{port}{ours}", headers, args.seconds, args.concurrency))
                b.append(wrk(f"http://127.0.0.1:{bare_port}{theirs}", {}, args.seconds, args.concurrency))
            ra, rb = max(r for r, _ in a), max(r for r, _ in b)
            pa, pb = min(a)[1], min(b)[1]
            print(f"{name:<20} {ra:>9.0f} req/s p50 {pa:>7} {rb:>11.0f} req/s p50 {pb:>7} {ra / rb:>6.2f}x",
                  flush=True)
        print(f"server RSS after load: {rss_kib(proc.pid) / 1024:.1f} MiB")
    finally:
        for p in (proc, bare):
            p.terminate()
            p.wait(timeout=60)


if __name__ == "__main__":
    main()
