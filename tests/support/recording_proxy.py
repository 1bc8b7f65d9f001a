"""An HTTP proxy on 127.0.0.1 in front of a real OpenAI-compatible model
server that keeps what went through: each chat completion request's body and
the model server's answer as it came (streamed or whole). The server under
test talks to the proxy as it would to the model server."""

from __future__ import annotations

import json

import aiohttp
from aiohttp import web


class RecordingProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")  # the model server's base URL, ending in /v1
        self.exchanges: list[dict] = []  # {"request": body, "status": int, "response": text}
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.completions)
        self.app.router.add_get("/v1/models", self.models)

    async def models(self, request: web.Request) -> web.Response:
        async with aiohttp.ClientSession() as session, session.get(f"{self.upstream}/models") as resp:
            return web.Response(status=resp.status, body=await resp.read(), content_type=resp.content_type)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        exchange: dict = {"request": body, "status": 0, "response": ""}
        self.exchanges.append(exchange)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                f"{self.upstream}/chat/completions", json=body) as upstream:
            exchange["status"] = upstream.status
            out = web.StreamResponse(status=upstream.status,
                                     headers={"Content-Type": upstream.headers.get("Content-Type", "")})
            await out.prepare(request)
            received = bytearray()
            async for piece in upstream.content.iter_any():
                received += piece
                exchange["response"] = received.decode(errors="replace")
                await out.write(piece)
            await out.write_eof()
            return out


def streamed_events(text: str) -> list[dict]:
    """The JSON events of a streamed chat completion (`data: {...}` lines)."""
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: {")]


def summary(exchange: dict) -> dict:
    """What one model request asked and what the model answered: its text,
    the tool calls it asked for (name and arguments), how it ended."""
    request = exchange["request"]
    said, calls, finish = "", {}, None
    for event in streamed_events(exchange["response"]):
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            said += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call.get("index", 0), {"name": "", "arguments": ""})
                function = call.get("function") or {}
                entry["name"] += function.get("name") or ""
                entry["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {"tools": [t["function"]["name"] for t in request.get("tools", [])],
            "tool_choice": request.get("tool_choice"),
            "messages": [(m["role"], m.get("content"), m.get("tool_calls")) for m in request["messages"]],
            "status": exchange["status"], "text": said, "tool_calls": list(calls.values()),
            "finish_reason": finish, "raw": exchange["response"] if exchange["status"] != 200 else None}
