"""An OpenAI-compatible model server on 127.0.0.1 (tests and bench/ use it)
that answers each question with a text of its own, streamed in `pieces`
deltas `pause` seconds apart, and notes which server process asked: each
process is started with its own `X-Process` header (OPENAI_HEADERS)."""

from __future__ import annotations

import asyncio
import collections
import json

from aiohttp import web


class PacedModel:
    def __init__(self, pieces: int = 40, pause: float = 0.15):
        self.pieces = pieces
        self.pause = pause
        # question -> the X-Process of each request for it, in order
        self.askers: dict[str, list[str]] = {}
        # X-Process -> streams it is being sent right now
        self.streaming: collections.Counter[str] = collections.Counter()
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.handle)

    def pieces_of(self, question: str) -> list[str]:
        return [f"{question}/{i} " for i in range(self.pieces)]

    def answer_for(self, question: str) -> str:
        return "".join(self.pieces_of(question))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        question = str((await request.json())["messages"][-1]["content"])
        asker = request.headers.get("X-Process", "")
        self.askers.setdefault(question, []).append(asker)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        self.streaming[asker] += 1
        try:
            for piece in self.pieces_of(question):
                if self.pause:
                    await asyncio.sleep(self.pause)
                await resp.write(_line({"content": piece}))
            await resp.write(_line({}, "stop") + b"data: [DONE]\n\n")
        except ConnectionError:
            pass  # the process that asked died or stopped the answer
        finally:
            self.streaming[asker] -= 1
        return resp


def _line(delta: dict, finish_reason: str | None = None) -> bytes:
    event = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
    return f"data: {json.dumps(event)}\n\n".encode()
