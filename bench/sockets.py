"""Memory of idle authenticated WebSockets: the server's RSS growth per
socket while N clients hold a chat's socket open (/ws/chat/{id}?token=),
beside a bare aiohttp WebSocket server held open the same way (bench/relay.py's
baseline). The clients run in --procs helper processes. Every socket needs a
descriptor in the server, so N is capped by the hard RLIMIT_NOFILE (the bench
raises the soft limit to it).

    .venv/bin/python bench/sockets.py [--sockets 19500] [--procs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import rss_kib, start_server  # noqa: E402
from relay import start_baseline  # noqa: E402

WARM = 200  # sockets opened before the first reading, so that one-off allocations are not counted


def hold(url: str, count: int) -> None:
    """Open `count` sockets to `url`, say so on stdout, and keep them until stdin closes."""
    async def connect(session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        while True:
            try:
                return await session.ws_connect(url, heartbeat=None, autoping=True)
            except aiohttp.WSServerHandshakeError as exc:
                # a server swamped for a moment (on a busy machine) answers 503: try again
                if exc.status != 503:
                    raise
                await asyncio.sleep(0.5)

    async def run() -> None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        sockets = []
        for start in range(0, count, 200):
            sockets += await asyncio.gather(*(connect(session) for _ in range(start, min(count, start + 200))))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for ws in sockets:
            await ws.close()
        await session.close()
    uvloop.run(run())


def open_many(url: str, count: int, procs: int) -> list[subprocess.Popen]:
    holders = [subprocess.Popen([sys.executable, __file__, "--hold", url, str(count // procs + (i < count % procs))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(procs)]
    for holder in holders:
        assert holder.stdout.readline().strip() == "ready", "a holder failed to open its sockets"
    return holders


def close(holders: list[subprocess.Popen]) -> None:
    for holder in holders:
        holder.stdin.close()
        holder.wait(timeout=120)


def per_socket(pid: int, url: str, count: int, procs: int) -> float:
    warm = open_many(url, WARM, 1)
    time.sleep(1)
    before = rss_kib(pid)
    holders = open_many(url, count, procs)
    time.sleep(2)
    after = rss_kib(pid)
    close(holders + warm)
    return (after - before) / count


async def chat_socket_url(base: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/auth/register", json={
                "email": f"sockets-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark-password"}) as resp:
            token = (await resp.json())["access_token"]
        async with session.post(f"{base}/api/chats", json={"title": "sockets"},
                                headers={"Authorization": f"Bearer {token}"}) as resp:
            chat_id = (await resp.json())["id"]
    return f"{base}/ws/chat/{chat_id}?token={token}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=19_500)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--hold", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.hold:
        hold(args.hold[0], int(args.hold[1]))
        return
    results = {}
    proc, port = start_baseline()
    try:
        results["bare aiohttp"] = per_socket(proc.pid, f"http://127.0.0.1:{port}/ws/idle", args.sockets, args.procs)
    finally:
        proc.terminate()
        proc.wait()
    proc, port = start_server(LOG_LEVEL="ERROR")
    try:
        url = uvloop.run(chat_socket_url(f"http://127.0.0.1:{port}"))
        results["chatserver"] = per_socket(proc.pid, url, args.sockets, args.procs)
    finally:
        proc.terminate()
        proc.wait()
    print(f"{args.sockets} idle WebSockets (descriptor limit {hard}):")
    for name, kib in results.items():
        print(f"  {name:<13} {kib:6.1f} KiB per socket  ({kib / results['bare aiohttp']:.2f}x)")


if __name__ == "__main__":
    main()
