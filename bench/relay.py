"""Chunk relay: AI-service callbacks in, WebSocket frames out.

Starts the server (`run.py`, in its own process) with a fake AI service in
this process, opens one WebSocket watcher per stream, drives M concurrent
streams through the callback endpoint, and prints chunks/s delivered to the
watchers and the callback-to-frame latency (p50/p99); once with one event
per callback and once with batches of 20. Throughput is measured flat out
(every stream posts K callbacks as fast as it can, so its latencies are
queueing time); latency is measured again at a paced load, each stream
sending K chunks at --rate chunks/s as a model writing tokens would. Each
stream's first callback, before the clock starts, warms it up. The baseline is a
bare aiohttp process that only relays a POST body to a socket (no auth, no
Redis, no database), driven the same way; our figures are also printed as a
ratio of it. Beside the throughput, the CPU time the relaying process itself
spent per chunk (from /proc; Redis, shared, is not counted): on a machine
busy with other work the throughput follows the share of the cores each
process gets, the CPU per chunk much less.

    .venv/bin/python bench/relay.py [--streams 50] [--chunks 200] [--rate 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_seconds, free_port, serve_fake_service, spawn, start_server  # noqa: E402

BATCHES = (1, 20)
WARM = 1  # the warm-up's chunks, before the measured ones (their seq numbers follow it)


# -- the baseline: a bare relay --------------------------------------------

def serve_baseline(port: int) -> None:
    sockets: dict[str, set[web.WebSocketResponse]] = {}

    async def relay(request: web.Request) -> web.Response:
        body = await request.text()
        for ws in sockets.get(request.match_info["stream"], ()):
            await ws.send_str(body)
        return web.json_response({"ok": True})

    async def watch(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        stream = request.match_info["stream"]
        sockets.setdefault(stream, set()).add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            sockets[stream].discard(ws)
        return ws

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post("/relay/{stream}", relay)
    app.router.add_get("/ws/{stream}", watch)
    app.router.add_get("/ready", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                loop=uvloop.new_event_loop())


def start_baseline() -> tuple[subprocess.Popen, int]:
    port = free_port()
    return spawn([sys.executable, __file__, "--serve-baseline", str(port)], port, timeout=30), port


# -- measuring ---------------------------------------------------------------

def chunk_event(seq: int) -> dict:
    return {"type": "chunk", "content": f"{time.perf_counter_ns()};", "seq": seq}


async def watcher(ws: aiohttp.ClientWebSocketResponse, expected: int, latencies: list[float],
                  done: asyncio.Event) -> None:
    """Read frames until `expected` chunks arrived, noting each chunk's latency."""
    seen = 0
    async for message in ws:
        now = time.perf_counter_ns()
        frame = json.loads(message.data)
        events = frame if isinstance(frame, list) else [frame]
        for event in events:
            if event.get("type") != "chunk":
                continue
            for stamp in event["content"].split(";")[:-1]:
                latencies.append((now - int(stamp)) / 1e6)
                seen += 1
        if seen >= expected:
            break
    done.set()


async def drive(session: aiohttp.ClientSession, url: str, chunks: int, batch: int, rate: float | None) -> None:
    # streams start out of phase, as independent generations would
    began = time.perf_counter() + (random.uniform(0, batch / rate) if rate else 0)
    for start in range(0, chunks, batch):
        if rate:  # post each batch when its last chunk would have been written
            await asyncio.sleep(max(0.0, began + (start + batch) / rate - time.perf_counter()))
        events = [chunk_event(seq) for seq in range(WARM + start, WARM + min(start + batch, chunks))]
        async with session.post(url, json=events if batch > 1 else events[0]) as resp:
            if resp.status != 200:
                raise RuntimeError(f"callback answered {resp.status}: {await resp.text()}")


async def warm_up(session, targets: list[tuple[str, aiohttp.ClientWebSocketResponse]]) -> None:
    """One callback per stream, before the clock starts: what a stream's first
    callback sets up (a lookup, a pooled connection) is no part of its rate."""
    for url, ws in targets:
        async with session.post(url, json=chunk_event(0)) as resp:
            assert resp.status == 200, await resp.text()
        await ws.receive()


async def measure(session, targets: list[tuple[str, aiohttp.ClientWebSocketResponse]], chunks: int,
                  batch: int, rate: float | None, pid: int) -> tuple[float, list[float], float]:
    await warm_up(session, targets)
    cpu = cpu_seconds(pid)
    latencies: list[float] = []
    dones = [asyncio.Event() for _ in targets]
    readers = [asyncio.create_task(watcher(ws, chunks, latencies, done))
               for (_, ws), done in zip(targets, dones, strict=True)]
    started = time.perf_counter()
    await asyncio.gather(*(drive(session, url, chunks, batch, rate) for url, _ in targets))
    await asyncio.wait_for(asyncio.gather(*(d.wait() for d in dones)), 120)
    elapsed = time.perf_counter() - started
    await asyncio.gather(*readers)
    return len(latencies) / elapsed, latencies, (cpu_seconds(pid) - cpu) / len(latencies)


# -- the two servers -----------------------------------------------------------

async def baseline_targets(session, port: int, streams: int):
    targets = []
    for _ in range(streams):
        stream = uuid.uuid4().hex
        ws = await session.ws_connect(f"http://127.0.0.1:{port}/ws/{stream}")
        targets.append((f"http://127.0.0.1:{port}/relay/{stream}", ws))
    await asyncio.sleep(0.2)  # let the relay register every socket
    return targets


class FakeAIService:
    def __init__(self):
        self.callbacks: dict[str, str] = {}
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.callbacks[body["message_id"]] = body["callback_url"]
        self.arrived.set()
        return web.json_response({"accepted": True}, status=202)


async def our_targets(session, base: str, service: FakeAIService, streams: int):
    async with session.post(f"{base}/api/auth/register", json={
            "email": f"relay-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark-password"}) as resp:
        token = (await resp.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    answers = []
    for i in range(streams):
        async with session.post(f"{base}/api/chats", json={"title": f"relay {i}"}, headers=headers) as resp:
            chat_id = (await resp.json())["id"]
        async with session.post(f"{base}/api/chats/{chat_id}/messages", json={"content": "go"},
                                headers=headers) as resp:
            answers.append((chat_id, (await resp.json())["assistant_message"]["id"]))
    while not all(answer in service.callbacks for _, answer in answers):
        service.arrived.clear()
        await asyncio.wait_for(service.arrived.wait(), 60)
    targets = []
    for chat_id, answer in answers:
        ws = await session.ws_connect(f"{base}/ws/chat/{chat_id}?token={token}")
        await ws.send_json({"type": "stream_request", "message_id": answer})
        assert json.loads((await ws.receive()).data)["type"] == "stream_content"
        targets.append((service.callbacks[answer], ws))
    return targets


def chunks_of(args, batch: int, paced: bool) -> int:
    """Chunks per stream: flat out, --chunks callbacks (in batches, that many
    batches: 200 chunks in batches of 20 would be over in a tenth of a second);
    paced, --chunks chunks."""
    return args.chunks if paced else args.chunks * batch


def summary(rate: float, latencies: list[float], cpu_per_chunk: float) -> dict:
    cuts = statistics.quantiles(latencies, n=100)
    return {"chunks_per_s": rate, "p50_ms": statistics.median(latencies), "p99_ms": cuts[98],
            "cpu_us": cpu_per_chunk * 1e6}


async def run(args) -> None:
    results: dict[tuple[str, int], dict] = {}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        proc, port = start_baseline()
        try:
            for batch in BATCHES:
                for paced in (False, True):
                    targets = await baseline_targets(session, port, args.streams)
                    results["baseline", batch, paced] = summary(
                        *await measure(session, targets, chunks_of(args, batch, paced), batch,
                                       args.rate if paced else None, proc.pid))
                    for _, ws in targets:
                        await ws.close()
        finally:
            proc.terminate()
            proc.wait()

        service = FakeAIService()
        runner, service_url = await serve_fake_service(service.handle)
        proc, port = start_server(AI_SERVICE_URL=service_url,
                                  STREAM_TIMEOUT_SECONDS="600")
        try:
            for batch in BATCHES:
                for paced in (False, True):
                    targets = await our_targets(session, f"http://127.0.0.1:{port}", service, args.streams)
                    results["chatserver", batch, paced] = summary(
                        *await measure(session, targets, chunks_of(args, batch, paced), batch,
                                       args.rate if paced else None, proc.pid))
                    for _, ws in targets:
                        await ws.close()
        finally:
            proc.terminate()
            proc.wait()
            await runner.cleanup()

    print(f"{args.streams} concurrent streams, one watcher each; flat out {args.chunks} callbacks per stream, "
          f"paced {args.chunks} chunks per stream")
    print(f"{'server':<11} {'events/callback':>15} {'load':>14} {'chunks/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'vs baseline':>12} {'CPU us/chunk':>13} {'baseline/us':>12}")
    for (server, batch, paced), r in results.items():
        base = results["baseline", batch, paced]
        ratio = r["chunks_per_s"] / base["chunks_per_s"]
        load = f"{args.rate:g}/s/stream" if paced else "flat out"
        print(f"{server:<11} {batch:>15} {load:>14} {r['chunks_per_s']:>10.0f} {r['p50_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {ratio:>11.2f}x {r['cpu_us']:>13.0f} {base['cpu_us'] / r['cpu_us']:>11.2f}x")
    one, batched = results["chatserver", 1, False]["chunks_per_s"], results["chatserver", 20, False]["chunks_per_s"]
    print(f"chatserver: batches of 20 deliver {batched / one:.1f}x the chunks/s of one-event callbacks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=50, help="concurrent streams (default 50)")
    parser.add_argument("--chunks", type=int, default=200, help="chunks per stream (default 200)")
    parser.add_argument("--rate", type=float, default=20, help="chunks/s per stream at the paced load (default 20)")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
