"""Time to first token through the `openai` backend: the extra delay between
an OpenAI-compatible model server writing its first token and the client's
first frame carrying it, with N streams at once. The mock model server runs
in a process of its own and writes the wall-clock time into its first token;
each client (one WebSocket per chat) subtracts it from the time the frame
arrived.

    .venv/bin/python bench/ttft.py [--streams 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
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
from common import free_port, spawn, start_server  # noqa: E402

THINK = 0.3  # the model's "prompt processing" before its first token
TOKENS = 20
TOKEN_GAP = 0.02


def serve_model(port: int) -> None:
    async def completions(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await asyncio.sleep(THINK)
        for i in range(TOKENS):
            text = f"{time.time():.6f};" if i == 0 else " token"
            event = {"choices": [{"index": 0, "delta": {"content": text}}]}
            await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
            await asyncio.sleep(TOKEN_GAP)
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/ready", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                loop=uvloop.new_event_loop())


async def one_stream(session, base: str, headers: dict, token: str) -> float:
    async with session.post(f"{base}/api/chats", json={"title": "ttft"}, headers=headers) as resp:
        chat_id = (await resp.json())["id"]
    async with session.ws_connect(f"{base}/ws/chat/{chat_id}?token={token}") as ws:
        async with session.post(f"{base}/api/chats/{chat_id}/messages", json={"content": "hi"},
                                headers=headers) as resp:
            answer = (await resp.json())["assistant_message"]["id"]
        await ws.send_str(orjson.dumps({"type": "stream_request", "message_id": answer}).decode())
        async for message in ws:
            arrived = time.time()
            frame = orjson.loads(message.data)
            if frame.get("message_id") == answer and ";" in frame.get("content", ""):
                return (arrived - float(frame["content"].split(";")[0])) * 1000
    raise RuntimeError("the socket closed before the first token")


async def run(base: str, streams: int, rounds: int) -> list[float]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async with session.post(f"{base}/api/auth/register", json={
                "email": f"ttft-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark-password"}) as resp:
            token = (await resp.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        delays: list[float] = []
        for _ in range(rounds):
            delays += await asyncio.gather(*(one_stream(session, base, headers, token) for _ in range(streams)))
        return delays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-model", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model:
        serve_model(args.serve_model)
        return
    model_port = free_port()
    model = spawn([sys.executable, __file__, "--serve-model", str(model_port)], model_port, timeout=30)
    proc, port = start_server(OPENAI_BASE_URL=f"http://127.0.0.1:{model_port}/v1", OPENAI_API_KEY="sk-bench",
                              OPENAI_MODEL="bench-model", AI_BACKEND="openai")
    try:
        delays = sorted(uvloop.run(run(f"http://127.0.0.1:{port}", args.streams, args.rounds)))
        p99 = statistics.quantiles(delays, n=100)[98]
        print(f"{args.streams} streams at once x {args.rounds} rounds through the openai backend: model's first "
              f"token -> client's first frame: p50 {statistics.median(delays):.1f} ms, p99 {p99:.1f} ms, "
              f"max {delays[-1]:.1f} ms")
    finally:
        for p in (proc, model):
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
