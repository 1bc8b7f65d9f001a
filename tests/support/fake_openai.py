"""A fake OpenAI-compatible model server on 127.0.0.1, and a test client wired to it."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web


class FakeOpenAI:
    """An OpenAI-compatible /v1/chat/completions server streaming `deltas`.
    (Find a test's requests by its question: see FakeAIService on strays.)

    `hold` (an asyncio.Event) pauses the stream after the first delta until set;
    `status` answers with that HTTP status instead of a stream."""

    def __init__(self, deltas=("Hel", "lo", "!"), statuses=(200,), hold: asyncio.Event | None = None,
                 break_after: int | None = None, reasoning=()):
        self.deltas = list(deltas)
        self.reasoning = list(reasoning)
        self.statuses = list(statuses)
        self.hold = hold
        self.break_after = break_after
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.disconnected = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.handle)

    def requests_about(self, question: str) -> list[dict]:
        return [r for r in self.requests if r["messages"][-1]["content"] == question]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status != 200:
            return web.json_response({"error": {"message": "nope"}}, status=status)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for thought in self.reasoning:
                event = {"choices": [{"index": 0, "delta": {"reasoning_content": thought}}]}
                await resp.write(f"data: {json.dumps(event)}\n\n".encode())
            for i, delta in enumerate(self.deltas):
                if self.break_after is not None and i == self.break_after:
                    await resp.write(b"data: {broken json\n\n")
                    return resp
                event = {"choices": [{"index": 0, "delta": {"content": delta}}]}
                await resp.write(f"data: {json.dumps(event)}\n\n".encode())
                if i == 0 and self.hold is not None:
                    await self.hold.wait()
            await resp.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return resp


async def start_openai_service(fake_service, make_client, service: FakeOpenAI | None = None, **settings):
    service = service or FakeOpenAI()
    server = await fake_service(service.app)
    client = await make_client(OPENAI_BASE_URL=str(server.make_url("/v1")), OPENAI_API_KEY="sk-test",
                               OPENAI_MODEL="test-model", **settings)
    return service, client
