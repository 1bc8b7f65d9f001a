"""/v1/chat/completions streaming beside the WebSocket, through the callback backend.

Starts the server (`run.py`, in its own process) with a fake AI service in
this process that answers every request at once with --chunks callback
events, one chunk each, as fast as the server takes them. Then N clients at
once ask a question and read the answer, first all over the WebSocket
(post the message, `stream_request`, read frames), then all over
`POST /v1/chat/completions` with `"stream": true` and an API key (read
`data:` lines to `[DONE]`). Printed for each path: time to first token
(request sent to first text received, p50/p99) and chunks/s delivered to
all clients together, and the /v1 path's cost per chunk against the
WebSocket's.

    .venv/bin/python bench/openai_stream.py [--clients 50] [--chunks 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import serve_fake_service, start_server, stream_contents  # noqa: E402

PIECE = "tok "


class AnsweringService:
    """The AI service: every request is answered through its callback URL."""

    def __init__(self, session: aiohttp.ClientSession, chunks: int):
        self.session = session
        self.chunks = chunks
        self.tasks: set[asyncio.Task] = set()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        task = asyncio.create_task(self.answer(body["callback_url"]))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({"accepted": True}, status=202)

    async def answer(self, url: str) -> None:
        for seq in range(self.chunks):
            async with self.session.post(url, json={"type": "chunk", "content": PIECE, "seq": seq}) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"callback answered {resp.status}")
        async with self.session.post(url, json={"type": "complete", "seq": self.chunks}):
            pass


async def over_websocket(session, base: str, token: str, headers: dict) -> tuple[float, int]:
    async with session.post(f"{base}/api/chats", json={"title": "bench"}, headers=headers) as resp:
        chat_id = (await resp.json())["id"]
    async with session.ws_connect(f"{base}/ws/chat/{chat_id}?token={token}") as ws:
        started = time.perf_counter()
        async with session.post(f"{base}/api/chats/{chat_id}/messages", json={"content": "go"},
                                headers=headers) as resp:
            answer = (await resp.json())["assistant_message"]["id"]
        await ws.send_json({"type": "stream_request", "message_id": answer})
        first, text = None, ""
        async for message in ws:
            frame = json.loads(message.data)
            if frame.get("type") in ("stream_content", "chunk") and frame["content"]:
                first = first or time.perf_counter()
                text += frame["content"]
            elif frame.get("type") == "complete" or "error" in frame:
                break
    return first - started, len(text) // len(PIECE)


async def over_v1(session, base: str, key: str, model: str) -> tuple[float, int]:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "go"}]}
    started = time.perf_counter()
    first, text = None, ""
    async with session.post(f"{base}/v1/chat/completions", json=body,
                            headers={"Authorization": f"Bearer {key}"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"/v1 answered {resp.status}: {await resp.text()}")
        async for content in stream_contents(resp):
            first = first or time.perf_counter()
            text += content
    return first - started, len(text) // len(PIECE)


async def phase(clients: int, one) -> dict:
    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ttft = sorted(r[0] * 1000 for r in results)
    chunks = sum(r[1] for r in results)
    return {"ttft_p50": statistics.median(ttft), "ttft_p99": statistics.quantiles(ttft, n=100)[98],
            "chunks": chunks, "chunks_per_s": chunks / elapsed, "elapsed": elapsed, "ttft": ttft}


async def run(args) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as session:
        service = AnsweringService(session, args.chunks)
        runner, service_url = await serve_fake_service(service.handle)
        proc, port = start_server(AI_SERVICE_URL=service_url,
                                  STREAM_TIMEOUT_SECONDS="600", RATE_LIMIT_MESSAGES="0")
        base = f"http://127.0.0.1:{port}"
        try:
            async with session.post(f"{base}/api/auth/register", json={
                    "email": f"v1-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark-password"}) as resp:
                token = (await resp.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(f"{base}/api/keys", json={"name": "bench"}, headers=headers) as resp:
                key = (await resp.json())["key"]
            async with session.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {key}"}) as resp:
                model = (await resp.json())["data"][0]["id"]
            results = {
                "websocket": await phase(args.clients, lambda: over_websocket(session, base, token, headers)),
                "/v1": await phase(args.clients, lambda: over_v1(session, base, key, model)),
            }
        finally:
            await asyncio.gather(*service.tasks, return_exceptions=True)
            proc.terminate()
            proc.wait()
            await runner.cleanup()

    print(f"{args.clients} concurrent clients x {args.chunks} chunks, callback backend")
    print(f"{'path':<10} {'TTFT p50 ms':>12} {'TTFT p99 ms':>12} {'chunks':>8} {'chunks/s':>10} {'ms/chunk':>9}")
    for path, r in results.items():
        print(f"{path:<10} {r['ttft_p50']:>12.1f} {r['ttft_p99']:>12.1f} {r['chunks']:>8} "
              f"{r['chunks_per_s']:>10.0f} {1000 / r['chunks_per_s']:>9.3f}")
    ratio = results["websocket"]["chunks_per_s"] / results["/v1"]["chunks_per_s"]
    print(f"/v1 cost per chunk: {ratio:.2f}x the WebSocket's ({(ratio - 1) * 100:+.0f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--chunks", type=int, default=200, help="chunks per answer (default 200)")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
