"""Relay at the cost of a pass-through: chatserver's streams against a bare proxy.

A mock OpenAI-compatible model server (its own process) streams every answer
as real server-sent events at --rate chunks/s, each chunk's text being the
wall-clock time it was written. The baseline is a bare aiohttp pass-through
proxy (its own process, uvloop like the server): model SSE in, client SSE
out, nothing stored. Then chatserver (`run.py`, the `openai` backend, its own
Redis started here, PostgreSQL shared) is followed the three ways a client
can: `POST /v1/chat/completions` with `"stream": true`, the WebSocket
(`stream_request`) and server-sent events (`GET /api/messages/{id}/stream`),
--streams answers of --chunks chunks at once each way.

Printed for each: CPU seconds per 1,000 chunks of the relaying process plus
its share of Redis (the redis-server started for it) and PostgreSQL (the
backends connected to its database; the shared WAL writer and checkpointer
are left out), read from /proc before and after; and the latency per chunk,
model written -> client read, p50/p99, with what it adds to the
pass-through's. Ratios are to the pass-through measured in the same run.

With --baseline DIR, chatserver's checkout at DIR (a worktree of main, say)
is measured the same three ways in the same run, before this one: a change's
before and after against the same pass-through.

    .venv/bin/python bench/passthrough.py [--streams 50] [--chunks 200] [--rate 20] [--profile FILE]
                                          [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, cpu_seconds, free_port, spawn, start_server, stream_contents  # noqa: E402

MODEL = "bench-model"


# -- the mock model server ------------------------------------------------------

def serve_model(port: int, chunks: int, rate: float) -> None:
    async def completions(request: web.Request) -> web.StreamResponse:
        # a client's max_tokens makes a short answer (the warm-ups)
        count = orjson.loads(await request.read()).get("max_tokens") or chunks
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        # answers start out of phase, as independent generations would
        began = time.monotonic() + random.uniform(0, 1 / rate)
        for i in range(count):
            await asyncio.sleep(max(0.0, began + i / rate - time.monotonic()))
            event = {"id": "bench", "object": "chat.completion.chunk", "model": MODEL,
                     "choices": [{"index": 0, "delta": {"content": f"{time.time_ns()};"}}]}
            await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
        end = {"id": "bench", "object": "chat.completion.chunk", "model": MODEL,
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await resp.write(b"data: " + orjson.dumps(end) + b"\n\ndata: [DONE]\n\n")
        return resp

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/ready", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop())


# -- the baseline: a bare pass-through proxy --------------------------------------

def serve_passthrough(port: int, model_url: str) -> None:
    async def completions(request: web.Request) -> web.StreamResponse:
        session: aiohttp.ClientSession = request.app["session"]
        async with session.post(model_url, data=await request.read(),
                                headers={"Content-Type": "application/json"}) as upstream:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            async for data in upstream.content.iter_any():
                await resp.write(data)
        await resp.write_eof()
        return resp

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    async def session(app: web.Application):
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app["session"].close()

    app = web.Application()
    app.cleanup_ctx.append(session)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/ready", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop())


# -- CPU from /proc -------------------------------------------------------------------

class Cpu:
    """CPU seconds of fixed processes plus the PostgreSQL backends connected to a database."""

    def __init__(self, pids: dict[str, int], database: str | None):
        self.pids, self.database = pids, database

    def backends(self) -> list[int]:
        if self.database is None:
            return []
        import psycopg2
        conn = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
        try:
            cur = conn.cursor()
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,))
            return [row[0] for row in cur.fetchall()]
        finally:
            conn.close()

    def sample(self) -> dict[str, object]:
        found: dict[str, object] = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        found["postgres"] = {pid: cpu_seconds(pid) for pid in self.backends()}
        return found

    @staticmethod
    def spent(before: dict, after: dict) -> dict[str, float]:
        spent = {name: after[name] - before[name] for name in after if name != "postgres"}
        spent["postgres"] = sum(now - before["postgres"].get(pid, 0.0) for pid, now in after["postgres"].items())
        return spent


# -- the clients --------------------------------------------------------------------------

def stamps(text: str, latencies: list[float]) -> int:
    """Note the latency of every chunk in `text` (each is a model's write time and ';')."""
    now = time.time_ns()
    found = text.split(";")[:-1]
    for stamp in found:
        latencies.append((now - int(stamp)) / 1e6)
    return len(found)


async def read_sse_deltas(resp: aiohttp.ClientResponse, latencies: list[float]) -> int:
    """An OpenAI-style stream: `data:` lines up to [DONE]."""
    seen = 0
    async for content in stream_contents(resp):
        seen += stamps(content, latencies)
    return seen


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str):
        self.session, self.base = session, base
        self.headers: dict[str, str] = {}
        self.token = self.key = ""

    async def sign_up(self) -> None:
        async with self.session.post(f"{self.base}/api/auth/register", json={
                "email": f"pass-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark-password"}) as resp:
            self.token = (await resp.json())["access_token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.post(f"{self.base}/api/keys", json={"name": "bench"}, headers=self.headers) as resp:
            self.key = (await resp.json())["key"]

    async def v1(self, latencies: list[float], chunks: int | None = None) -> int:
        body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "go"}],
                "max_tokens": chunks}
        async with self.session.post(f"{self.base}/v1/chat/completions", json=body,
                                     headers={"Authorization": f"Bearer {self.key or 'none'}"}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"/v1 answered {resp.status}: {await resp.text()}")
            return await read_sse_deltas(resp, latencies)

    async def chat(self) -> str:
        async with self.session.post(f"{self.base}/api/chats", json={"title": "bench"}, headers=self.headers) as resp:
            return (await resp.json())["id"]

    async def ask(self, chat_id: str) -> str:
        async with self.session.post(f"{self.base}/api/chats/{chat_id}/messages", json={"content": "go"},
                                     headers=self.headers) as resp:
            return (await resp.json())["assistant_message"]["id"]

    async def websocket(self, chat_id: str, latencies: list[float]) -> int:
        seen = 0
        async with self.session.ws_connect(f"{self.base}/ws/chat/{chat_id}?token={self.token}") as ws:
            answer = await self.ask(chat_id)
            await ws.send_str(json.dumps({"type": "stream_request", "message_id": answer}))
            async for message in ws:
                frame = orjson.loads(message.data)
                if frame.get("type") in ("stream_content", "chunk"):
                    seen += stamps(frame["content"], latencies)
                elif frame.get("type") == "complete":
                    return seen
                elif "error" in frame:
                    raise RuntimeError(frame["error"])
        raise RuntimeError("the socket closed before the answer ended")

    async def sse(self, chat_id: str, latencies: list[float]) -> int:
        answer = await self.ask(chat_id)
        seen, event = 0, ""
        async with self.session.get(f"{self.base}/api/messages/{answer}/stream", headers=self.headers) as resp:
            async for line in resp.content:
                if line.startswith(b"event: "):
                    event = line[7:].strip().decode()
                elif line.startswith(b"data: "):
                    if event in ("content", "chunk"):
                        seen += stamps(orjson.loads(line[6:])["content"], latencies)
                    elif event == "complete":
                        return seen
                    elif event == "error":
                        raise RuntimeError(line.decode())
        raise RuntimeError("the stream closed before the answer ended")


async def phase(streams: int, cpu: Cpu, one: Callable[[list[float]], Awaitable[int]]) -> dict:
    latencies: list[float] = []
    before = cpu.sample()
    started = time.perf_counter()
    seen = sum(await asyncio.gather(*(one(latencies) for _ in range(streams))))
    elapsed = time.perf_counter() - started
    spent = Cpu.spent(before, cpu.sample())
    cuts = statistics.quantiles(latencies, n=100)
    return {"chunks": seen, "elapsed": elapsed, "cpu": spent, "p50": statistics.median(latencies), "p99": cuts[98]}


async def measure_passthrough(args, session: aiohttp.ClientSession, model_url: str) -> dict:
    port = free_port()
    proc = spawn([sys.executable, __file__, "--serve-passthrough", str(port), model_url], port, timeout=30)
    try:
        client = Client(session, f"http://127.0.0.1:{port}")
        await client.v1([], 2)  # warm up: the proxy's pooled connection to the model
        return await phase(args.streams, Cpu({"server": proc.pid}, None), client.v1)
    finally:
        proc.terminate()
        proc.wait()


async def measure_chatserver(args, session: aiohttp.ClientSession, model_url: str,
                             root: Path | None = None) -> dict[str, dict]:
    """This checkout's server, or the one at `root`."""
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    database = "chatserver_bench_passthrough"  # the one common.server_env empties for this script
    try:
        proc, port = start_server(root or ROOT, OPENAI_BASE_URL=model_url.removesuffix("/chat/completions"),
                                  OPENAI_API_KEY="sk-bench", OPENAI_MODEL=MODEL, AI_BACKEND="openai",
                                  # every answer at once (each idle worker holds a connection blocked on the queue)
                                  REDIS_URL=f"redis://127.0.0.1:{redis_port}/0?max_connections=1000",
                                  QUEUE_AI_CONCURRENCY=str(args.streams + 8),
                                  DB_POOL_MAX=str(max(10, args.streams // 2)))
    except BaseException:
        redis.terminate()
        raise
    cpu = Cpu({"server": proc.pid, "redis": redis.pid}, database)
    results = {}
    # py-spy's own sampling costs the server nothing: it reads the process from outside
    profile = args.profile and root is None
    spy = subprocess.Popen([args.py_spy, "record", "-p", str(proc.pid), "-o", args.profile, "-f", "raw",
                            "-r", "200", "--nonblocking"], stdout=subprocess.DEVNULL) if profile else None
    try:
        client = Client(session, f"http://127.0.0.1:{port}")
        await client.sign_up()
        await client.v1([], 2)  # warm up: pooled connections, the model list
        results["/v1"] = await phase(args.streams, cpu, client.v1)
        chats = [await client.chat() for _ in range(args.streams)]
        results["websocket"] = await phase(args.streams, cpu, lambda got: client.websocket(chats.pop(), got))
        chats = [await client.chat() for _ in range(args.streams)]
        results["sse"] = await phase(args.streams, cpu, lambda got: client.sse(chats.pop(), got))
        if profile:
            stats = subprocess.run(["redis-cli", "-p", str(redis_port), "info", "commandstats"],
                                   capture_output=True, text=True).stdout.split()
            busiest = sorted((line for line in stats if line.startswith("cmdstat_")),
                             key=lambda line: -float(line.split("usec=")[1].split(",")[0]))
            print("Redis, busiest commands over all three:", *busiest[:6], sep="\n  ")
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait()
        proc.terminate()
        proc.wait()
        redis.terminate()
        redis.wait()
    return results


def report(args, base: dict, ours: dict[str, dict]) -> None:
    print(f"{args.streams} streams at {args.rate:g} chunks/s, {args.chunks} chunks each; CPU s per 1,000 chunks "
          f"(server + its Redis + its PostgreSQL backends); latency model written -> client read")
    print(f"{'relay':<18} {'chunks':>7} {'server':>7} {'redis':>7} {'pg':>7} {'total':>7} {'vs pass':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'+p50':>6} {'+p99':>6}")

    def per_k(r: dict, name: str) -> float:
        return r["cpu"].get(name, 0.0) * 1000 / r["chunks"]

    def total(r: dict) -> float:
        return sum(r["cpu"].values()) * 1000 / r["chunks"]

    for name, r in [("pass-through", base), *ours.items()]:
        print(f"{name:<18} {r['chunks']:>7} {per_k(r, 'server'):>7.3f} {per_k(r, 'redis'):>7.3f} "
              f"{per_k(r, 'postgres'):>7.3f} {total(r):>7.3f} {total(r) / total(base):>7.2f}x "
              f"{r['p50']:>7.2f} {r['p99']:>7.2f} {r['p50'] - base['p50']:>6.2f} {r['p99'] - base['p99']:>6.2f}")


async def run(args, model_url: str) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=600)) as session:
        base = await measure_passthrough(args, session, model_url)
        ours = {}
        if args.baseline:
            before = await measure_chatserver(args, session, model_url, Path(args.baseline).resolve())
            ours = {f"base {name}": result for name, result in before.items()}
        ours |= await measure_chatserver(args, session, model_url)
    report(args, base, ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=50, help="answers at once (default 50)")
    parser.add_argument("--chunks", type=int, default=200, help="chunks per answer (default 200)")
    parser.add_argument("--rate", type=float, default=20, help="chunks/s per answer (default 20)")
    parser.add_argument("--profile", metavar="FILE", help="record the server's stacks with py-spy into FILE "
                        "(collapsed stacks: flamegraph.pl or speedscope read them)")
    parser.add_argument("--baseline", metavar="DIR", help="also measure the chatserver checkout at DIR "
                        "(rows 'base ...'; --profile records this checkout only)")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy program (pip install py-spy)")
    parser.add_argument("--serve-model", nargs=3, metavar=("PORT", "CHUNKS", "RATE"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-passthrough", nargs=2, metavar=("PORT", "MODEL_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model:
        port, chunks, rate = args.serve_model
        serve_model(int(port), int(chunks), float(rate))
        return
    if args.serve_passthrough:
        serve_passthrough(int(args.serve_passthrough[0]), args.serve_passthrough[1])
        return
    model_port = free_port()
    model = spawn([sys.executable, __file__, "--serve-model", str(model_port), str(args.chunks), str(args.rate)],
                  model_port, timeout=30)
    try:
        uvloop.run(run(args, f"http://127.0.0.1:{model_port}/v1/chat/completions"))
    finally:
        model.terminate()
        model.wait()


if __name__ == "__main__":
    main()
