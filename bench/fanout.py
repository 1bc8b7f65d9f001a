"""Fan-out: many WebSocket clients watching one answer. An AI service (faked
in this process) posts 500 chunks at 100 chunks/s through the callback
endpoint, one event per callback; every client follows the answer on its
own socket. Prints, per client count, when the clients had all 500 chunks in
order, counted from the first post (the ideal is 5.0 s: the last chunk is
posted then). Gradio's PR #7670 measured 250 clients at 43.3 s over a raw
WebSocket and 277 s through Gradio 4.

    .venv/bin/python bench/fanout.py [--clients 250,1000] [--chunks 500] [--rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import rss_kib, serve_fake_service, start_server  # noqa: E402
from relay import FakeAIService  # noqa: E402


async def client(session, url: str, answer: str, expected: str, ready: asyncio.Event, clients_ready: list,
                 total: int) -> float:
    """Follow the answer; the wall-clock time when its whole text had arrived, in order."""
    async with session.ws_connect(url) as ws:
        await ws.send_str(orjson.dumps({"type": "stream_request", "message_id": answer}).decode())
        text = ""
        async for message in ws:
            frame = orjson.loads(message.data)
            if frame.get("type") == "stream_content":
                text = frame["content"]
                clients_ready.append(1)
                if len(clients_ready) == total:
                    ready.set()
            elif frame.get("type") == "chunk":
                text += frame["content"]
                if len(text) >= len(expected):
                    assert text == expected, "chunks missing or out of order"
                    return time.time()
    raise RuntimeError("the socket closed before the answer was whole")


async def an_answer(session, base: str, service: FakeAIService) -> tuple[str, str, str]:
    """A pending answer the fake service was asked for: its chat's socket URL, its id, its callback URL."""
    async with session.post(f"{base}/api/auth/register", json={
            "email": f"fanout-{time.time_ns()}@example.com", "password": "benchmark-password"}) as resp:
        token = (await resp.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{base}/api/chats", json={"title": "fan-out"}, headers=headers) as resp:
        chat_id = (await resp.json())["id"]
    async with session.post(f"{base}/api/chats/{chat_id}/messages", json={"content": "go"}, headers=headers) as resp:
        answer = (await resp.json())["assistant_message"]["id"]
    while answer not in service.callbacks:
        service.arrived.clear()
        await asyncio.wait_for(service.arrived.wait(), 60)
    return f"{base}/ws/chat/{chat_id}?token={token}", answer, service.callbacks[answer]


async def one_round(base: str, service: FakeAIService, clients: int, chunks: int, rate: float) -> dict:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        chat_url, answer, callback = await an_answer(session, base, service)
        expected = "".join(f"{i};" for i in range(chunks))
        ready, clients_ready = asyncio.Event(), []
        readers = []
        for _ in range(clients):
            readers.append(asyncio.create_task(
                client(session, chat_url, answer, expected, ready, clients_ready, clients)))
        await asyncio.wait_for(ready.wait(), 120)
        # the AI service in a process of its own: the clients' reading must not hold up its posts
        poster = await asyncio.create_subprocess_exec(sys.executable, __file__, "--post", callback, "--chunks",
                                                      str(chunks), "--rate", str(rate), stdout=asyncio.subprocess.PIPE)
        first = float((await poster.stdout.readline()).decode())
        last_post = float((await poster.stdout.readline()).decode())
        await poster.wait()
        done = [t - first for t in await asyncio.wait_for(asyncio.gather(*readers), 300)]
        return {"clients": clients, "last": max(done), "p50": statistics.median(done), "posted": last_post - first}


async def post(callback: str, chunks: int, rate: float) -> None:
    """Post the chunks at `rate`; print the wall-clock times of the first and the last post."""
    async with aiohttp.ClientSession() as session:
        first = time.time()
        print(first, flush=True)
        for i in range(chunks):
            await asyncio.sleep(max(0.0, first + i / rate - time.time()))
            async with session.post(callback, json={"type": "chunk", "content": f"{i};", "seq": i}) as resp:
                assert resp.status == 200, await resp.text()
        print(time.time(), flush=True)


async def run(args) -> None:
    service = FakeAIService()
    runner, service_url = await serve_fake_service(service.handle)
    proc, port = start_server(AI_SERVICE_URL=service_url, STREAM_TIMEOUT_SECONDS="600")
    try:
        print(f"one answer of {args.chunks} chunks posted at {args.rate:g} chunks/s (ideal: whole at "
              f"{(args.chunks - 1) / args.rate:.1f} s after the first post)")
        print(f"{'clients':>8} {'all clients whole':>18} {'median client':>14} {'last post':>10} {'server RSS':>11}")
        for clients in args.clients:
            r = await one_round(f"http://127.0.0.1:{port}", service, clients, args.chunks, args.rate)
            print(f"{r['clients']:>8} {r['last']:>16.2f} s {r['p50']:>12.2f} s {r['posted']:>8.2f} s "
                  f"{rss_kib(proc.pid) / 1024:>8.0f} MiB",
                  flush=True)
    finally:
        proc.terminate()
        proc.wait()
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="250,1000", help="client counts, comma-separated")
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100, help="chunks/s")
    parser.add_argument("--post", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.post:
        uvloop.run(post(args.post, args.chunks, args.rate))
        return
    args.clients = [int(c) for c in args.clients.split(",")]
    # a socket each side per client, and the server (started from here) inherits the limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
