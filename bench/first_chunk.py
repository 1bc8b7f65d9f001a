"""First chunk through /v1/chat/completions with many clients at once, against
the same clients reading the model server directly.

A mock OpenAI-compatible model server runs in this process (real HTTP, SSE):
every request gets --chunks chunks at 20 chunks/s. The server is started with
`run.py` on the `openai` backend and its default settings, and one answer is
read through it first, so that the phases measure a process that has
answered before. Then, for each client count, all clients at once stream one
answer each straight from the mock (the baseline), and all at once stream one
answer each through `POST /v1/chat/completions` with `"stream": true` and an
API key. Each client checks that it read the whole answer.

Printed for each: the time from sending the request to the first content
chunk (p50, p99, max), the /v1 figures as a ratio to the baseline's, and the
server's event loop: its CPU time per answer, and the shares of the phase it
ran on a CPU and it was ready to run but waited for one (the machine busy
with other work; /proc/PID/schedstat). Target (issue 25): 50 clients, p99
under 300 ms. `--compare-concurrency N` runs the /v1 phases once more
against a second server with QUEUE_AI_CONCURRENCY=N (8 was the default while
every backend's answers waited for each other); `--baseline DIR`
against run.py of another checkout (the code before a change: `git worktree
add DIR main`), alternately with this one's `--rounds` times. `--pin` keeps the
server on CPU 0 and this process (the clients and the mock) on CPU 1, as the
issue's reference figures were taken (PostgreSQL, Redis and anything else on
the machine stay where the system puts them).

    .venv/bin/python bench/first_chunk.py [--clients 50 200] [--chunks 40] [--compare-concurrency 8]
        [--baseline DIR] [--rounds 1] [--pin]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, start_server, stream_contents  # noqa: E402

CHUNKS_PER_SECOND = 20
# with --pin: the server's CPU, and the one of this process (clients and mock)
SERVER_CPU, LOAD_CPU = 0, 1
MODEL = "bench-model"
PIECE = "tok "


async def serve_model(chunks: int) -> tuple[web.AppRunner, str]:
    """The mock model server; its runner and base URL (ending in /v1)."""

    async def completions(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(chunks):
            if i:
                await asyncio.sleep(1 / CHUNKS_PER_SECOND)
            event = {"id": "c", "object": "chat.completion.chunk", "model": MODEL,
                     "choices": [{"index": 0, "delta": {"content": PIECE}, "finish_reason": None}]}
            await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
        end = {"id": "c", "object": "chat.completion.chunk", "model": MODEL,
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await resp.write(b"data: " + orjson.dumps(end) + b"\n\ndata: [DONE]\n\n")
        return resp

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/v1"


async def first_chunk(session: aiohttp.ClientSession, url: str, key: str, chunks: int) -> float:
    """Seconds from sending one streamed completion to its first content chunk; checks the whole answer came."""
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    started = time.perf_counter()
    first, text = None, ""
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}: {await resp.text()}")
        async for content in stream_contents(resp):
            first = first or time.perf_counter()
            text += content
    if first is None or text != PIECE * chunks:
        raise RuntimeError(f"{url}: {len(text) // len(PIECE)} of {chunks} chunks arrived")
    return first - started


def cpu_seconds(pid: int) -> tuple[float, float]:
    """Seconds process `pid`'s main thread (the event loop) has run on a CPU so far, and has waited for one
    while it could have run (a machine busy with other work)."""
    ran, waited, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(ran) / 1e9, int(waited) / 1e9


async def phase(session: aiohttp.ClientSession, url: str, key: str, clients: int, chunks: int,
                server: int | None = None) -> dict:
    """First-chunk times of `clients` answers at once (and the calls that failed, which have none); with
    `server` (a pid), also that process's CPU time per answer, and its time on a CPU and waiting for one as
    shares of the phase's wall time."""
    before, started = cpu_seconds(server) if server else (0.0, 0.0), time.perf_counter()
    results = await asyncio.gather(*(first_chunk(session, url, key, chunks) for _ in range(clients)),
                                   return_exceptions=True)
    failed = [str(r) for r in results if isinstance(r, Exception)]
    times = sorted(1000 * t for t in results if isinstance(t, float)) or [math.nan]
    p99 = statistics.quantiles(times, n=100)[98] if len(times) > 1 else times[0]
    figures = {"p50": statistics.median(times), "p99": p99, "max": times[-1], "failed": failed}
    if server:
        wall = time.perf_counter() - started
        ran, waited = (after - earlier for after, earlier in zip(cpu_seconds(server), before, strict=True))
        figures |= {"cpu_ms": 1000 * ran / clients, "busy": ran / wall, "waiting": waited / wall}
    return figures


async def api_key(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(f"{base}/api/auth/register", json={
            "email": f"first-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark-password"}) as resp:
        token = (await resp.json())["access_token"]
    async with session.post(f"{base}/api/keys", json={"name": "bench"},
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        return (await resp.json())["key"]


async def through_server(session, model_url: str, args, label: str, checkout: Path = ROOT,
                         **settings: str) -> list[tuple[str, int, dict]]:
    proc, port = start_server(checkout, cpus={SERVER_CPU} if args.pin else None, OPENAI_BASE_URL=model_url,
                              OPENAI_API_KEY="sk-bench", OPENAI_MODEL=MODEL, **settings)
    base = f"http://127.0.0.1:{port}"
    try:
        key = await api_key(session, base)
        # one answer first: the phases measure a process that has answered before
        await first_chunk(session, f"{base}/v1/chat/completions", key, args.chunks)
        rows = []
        for clients in args.clients:
            rows.append((label, clients, await phase(session, f"{base}/v1/chat/completions", key, clients,
                                                     args.chunks, proc.pid)))
        return rows
    finally:
        proc.terminate()
        proc.wait()


async def run(args) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        runner, model_url = await serve_model(args.chunks)
        try:
            baseline = {clients: await phase(session, f"{model_url}/chat/completions", "sk-bench", clients,
                                             args.chunks) for clients in args.clients}
            rows = []
            for _ in range(args.rounds):
                if args.baseline:
                    rows += await through_server(session, model_url, args, f"/v1, {args.baseline.name}",
                                                 args.baseline.resolve())
                rows += await through_server(session, model_url, args, "/v1, defaults")
            if args.compare_concurrency:
                rows += await through_server(session, model_url, args,
                                             f"/v1, QUEUE_AI_CONCURRENCY={args.compare_concurrency}",
                                             QUEUE_AI_CONCURRENCY=str(args.compare_concurrency))
        finally:
            await runner.cleanup()

    print(f"first content chunk, {args.chunks} chunks per answer at {CHUNKS_PER_SECOND} chunks/s, openai backend, "
          + (f"server on CPU {SERVER_CPU}, clients and mock on CPU {LOAD_CPU}" if args.pin else "no CPU pinned"))
    print("(server: its event loop's CPU time per answer; the shares of the phase it ran on a CPU and it was ready")
    print(" to run but waited for one, the machine being busy with other work)")
    print(f"{'path':<32} {'clients':>7} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'p50 x':>8} {'p99 x':>8} "
          f"{'CPU ms/answer':>14} {'on CPU':>7} {'waiting':>8} {'failed':>7}")
    for clients, r in baseline.items():
        print(f"{'mock model server, direct':<32} {clients:>7} {r['p50']:>9.1f} {r['p99']:>9.1f} {r['max']:>9.1f} "
              f"{1:>8.2f} {1:>8.2f}")
    for label, clients, r in rows:
        base = baseline[clients]
        print(f"{label:<32} {clients:>7} {r['p50']:>9.1f} {r['p99']:>9.1f} {r['max']:>9.1f} "
              f"{r['p50'] / base['p50']:>8.2f} {r['p99'] / base['p99']:>8.2f} {r['cpu_ms']:>14.1f} "
              f"{r['busy']:>7.0%} {r['waiting']:>8.0%} {len(r['failed']):>7}")
    for label, clients, r in rows:
        if r["failed"]:
            print(f"{label}, {clients} clients: {len(r['failed'])} failed, the first: {r['failed'][0][:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200], help="clients at once (default 50 200)")
    parser.add_argument("--chunks", type=int, default=40, help="chunks per answer (default 40: 2 s)")
    parser.add_argument("--compare-concurrency", type=int, default=0,
                        help="also run the /v1 phases with QUEUE_AI_CONCURRENCY set to this")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also run the /v1 phases against run.py of another checkout (before a change)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the /v1 phases this many times (with --baseline: alternately)")
    parser.add_argument("--pin", action="store_true",
                        help=f"the server on CPU {SERVER_CPU}, the clients and the mock on CPU {LOAD_CPU}")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {LOAD_CPU})
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
