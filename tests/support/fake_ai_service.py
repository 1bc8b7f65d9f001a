"""A fake external AI service of the callback protocol on 127.0.0.1 (browser
tests use it too): scripted answers, the requests it got, and a test client
wired to it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

SOURCES = [
    {"title": "Example handbook", "url": "https://example.com/handbook",
     "content": "The handbook explains how answers are streamed."},
    {"title": "Unlinked note", "url": "", "content": "A source without a URL."},
]


def default_answer(message: str) -> str:
    return (f"You said: {message}\n\n"
            "Here is a **bold** point, some *emphasis* and `inline code`:\n\n"
            "- first item\n- second item\n\n"
            "That is all for now.")


@dataclasses.dataclass
class Script:
    """What a streaming FakeAIService answers: the pieces, the pause between them,
    the sources, or `fail` to end with an error event instead."""
    pieces: list[str]
    delay: float = 0.12
    sources: list[dict] = dataclasses.field(default_factory=lambda: list(SOURCES))
    fail: str | None = None


def split_pieces(text: str, size: int = 6) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


def default_script(body: dict) -> Script:
    """A markdown answer quoting the question, in small slow pieces, with SOURCES."""
    return Script(split_pieces(default_answer(body["message"])))


class FakeAIService:
    """The external AI service of the callback protocol: records every request
    and answers with the next status of `statuses` (the last one repeats).

    Without a `script` the test posts the callback events itself. With one
    (body -> Script), the service streams each accepted answer like a model:
    chunk events with seq, one by one, then complete with the sources (or an
    error event), stopping when the server answers 409 (the answer was stopped).

    Tests share one database, so an app's start-up sweep may re-queue another
    test's forgotten answer into this service: look requests up by message id."""

    def __init__(self, statuses=(202,), delay: float = 0, script: Callable[[dict], Script] | None = None):
        self.statuses = list(statuses)
        self.delay = delay
        self.script = script
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.arrived = asyncio.Event()
        self.url: str | None = None  # its /generate, once a test started it
        self.tasks: set[asyncio.Task] = set()
        self.session: aiohttp.ClientSession | None = None
        self.app = web.Application()
        self.app.router.add_post("/generate", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.arrived.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status < 300 and self.script is not None:
            task = asyncio.create_task(self.stream(body, self.script(body)))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.json_response({"accepted": status < 300}, status=status)

    def requests_for(self, message_id: str) -> list[dict]:
        return [r for r in self.requests if r["message_id"] == message_id]

    async def request_for(self, message_id: str, timeout: float = 30) -> dict:
        """The latest request for that answer, once one arrived."""
        async with asyncio.timeout(timeout):
            while not self.requests_for(message_id):
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests_for(message_id)[-1]

    async def stream(self, body: dict, script: Script) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession()
        url = body["callback_url"]

        async def post(event: dict) -> bool:
            for _ in range(20):
                try:
                    async with self.session.post(url, json=event) as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            return False

        with contextlib.suppress(asyncio.CancelledError):
            for seq, piece in enumerate(script.pieces):
                await asyncio.sleep(script.delay)
                if not await post({"type": "chunk", "content": piece, "seq": seq}):
                    return
            await asyncio.sleep(script.delay)
            if script.fail:
                await post({"type": "error", "error": script.fail})
            else:
                await post({"type": "complete", "sources": script.sources})

    async def close(self) -> None:
        """Cancel the answers still streaming."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


def callback_path(request_body: dict) -> str:
    """The path and query of the callback URL, to post through a test client."""
    url = urlsplit(request_body["callback_url"])
    return f"{url.path}?{url.query}"


async def start_callback_service(fake_service, make_client, service: FakeAIService | None = None, **settings):
    service = service or FakeAIService()
    server = await fake_service(service.app)
    client = await make_client(AI_SERVICE_URL=str(server.make_url("/generate")),
                               AI_SERVICE_API_KEY="service-key", **settings)
    return service, client
