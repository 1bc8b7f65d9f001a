"""End-to-end fixtures: the real app on a real port, a fake AI service that
streams slowly over the callback protocol (API.md), and headless Chromium
driven by Playwright's async API in the test's own event loop.

Chromium is Debian's /usr/bin/chromium (`playwright install` cannot download
here); without it the browser tests are skipped with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
from pathlib import Path
from typing import Any, Callable

import aiohttp
import pytest
from aiohttp import web

from chatserver.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.browser)
            if not os.access(CHROMIUM, os.X_OK):
                item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    """What the fake AI answers: the pieces, the pause between them, the sources."""
    pieces: list[str]
    delay: float = 0.12
    sources: list[dict] = dataclasses.field(default_factory=lambda: list(SOURCES))
    fail: str | None = None


def split_pieces(text: str, size: int = 6) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


class FakeAI:
    """The AI service of API.md: accepts the job, then POSTs chunk events
    (with seq) to callback_url one by one, then complete with sources."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: Callable[[dict], Script] = lambda body: Script(split_pieces(default_answer(body["message"])))
        self.tasks: set[asyncio.Task] = set()
        self.stopped: list[str] = []   # message ids the server told us to stop (409)
        self.session: aiohttp.ClientSession | None = None

    def answer(self, body: dict) -> str:
        return "".join(self.script(body).pieces)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/generate", self.generate)
        return app

    async def generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        task = asyncio.create_task(self.stream(body))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({"accepted": True}, status=202)

    async def stream(self, body: dict) -> None:
        script = self.script(body)
        if self.session is None:
            self.session = aiohttp.ClientSession()
        url = body["callback_url"]

        async def post(event: dict) -> bool:
            for _ in range(20):
                try:
                    async with self.session.post(url, json=event) as resp:
                        if resp.status == 409:
                            self.stopped.append(body["message_id"])
                            return False
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
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


@pytest.fixture
async def fake_ai(fake_service):
    fake = FakeAI()
    server = await fake_service(fake.app())
    fake.url = str(server.make_url("/generate"))
    yield fake
    await fake.close()


@dataclasses.dataclass
class Live:
    url: str
    app: web.Application
    settings: Any


@pytest.fixture
async def start_live(aiohttp_server, settings, fake_ai):
    """start_live(**overrides) -> the real app on a real port of 127.0.0.1."""

    async def start(**overrides: Any) -> Live:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        live_settings = settings.replace(**{"AI_SERVICE_URL": fake_ai.url, "PUBLIC_BASE_URL": base,
                                            "STREAM_TIMEOUT_SECONDS": 30, **overrides})
        server = await aiohttp_server(create_app(live_settings), host="127.0.0.1", port=port)
        return Live(str(server.make_url("/")), server.app, live_settings)

    return start


@pytest.fixture
async def live(start_live) -> Live:
    return await start_live()


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser):
    """A fresh page; the console errors it logs are kept in page.errors."""
    context = await browser.new_context(viewport={"width": 1200, "height": 850})
    page = await context.new_page()
    page.set_default_timeout(15000)
    page.errors = []
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()


async def screenshot(page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    await page.screenshot(path=str(path), full_page=False)
    return path


# ---------------------------------------------------------------- helpers

async def register_in_browser(page, live: Live, email: str | None = None, password: str = "correct horse") -> str:
    """Open the client and create an account through the form; returns the email."""
    import uuid
    email = email or f"web-{uuid.uuid4().hex[:10]}@example.com"
    if page.url != live.url:
        await page.goto(live.url)
    await page.get_by_role("tab", name="Create account").click()
    form = page.locator("#register-form")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Create account").click()
    await page.locator("#app-view").wait_for(state="visible")
    return email


async def token_of(page) -> str:
    return await page.evaluate("sessionStorage.getItem('chatserver.token')")


class Rest:
    """REST calls from the test itself, with the browser's token."""

    def __init__(self, live: Live, token: str):
        self.base = live.url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, **kwargs):
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.base + path, headers=self.headers, **kwargs) as resp:
                body = await resp.json() if resp.content_type == "application/json" else await resp.read()
                return resp.status, body


async def rest_of(page, live: Live) -> Rest:
    return Rest(live, await token_of(page))


async def new_chat(page) -> None:
    before = page.url
    await page.get_by_role("button", name="+ New chat").click()
    await page.wait_for_function("(u) => location.href !== u && location.hash.startsWith('#/chat/')", arg=before)


async def send(page, text: str, wait: bool = True) -> None:
    """Type and send a message; with `wait`, until it (and its answer) are on screen."""
    before = await page.locator("#messages > li.user").count()
    box = page.get_by_label("Message", exact=True)
    await box.fill(text)
    await box.press("Enter")
    if wait:
        await page.locator("#messages > li.assistant").nth(before).wait_for()


def assistant(page, index: int = -1):
    items = page.locator("#messages > li.assistant")
    return items.last if index == -1 else items.nth(index)


def unexpected_errors(page) -> list[str]:
    """Console errors other than the browser's own reports of HTTP error
    statuses and refused WebSocket upgrades (which the client handles)."""
    routine = ("Failed to load resource", "WebSocket connection to")
    return [e for e in page.errors if not e.startswith(routine)]


@pytest.fixture
async def client_only(aiohttp_server) -> str:
    """The routes alone (no database behind them): for tests of the page's own code."""
    from chatserver.app import add_routes

    app = web.Application()
    add_routes(app.router)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("/"))


class FlakyProxy:
    """A TCP proxy in front of the app: `drop()` cuts every open connection
    (a network blip), `refuse()`/`accept()` turn new connections away or in."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.refusing = False
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        pair = (writer, up_writer)
        self.pairs.add(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self.pairs.discard(pair)

    def drop(self) -> None:
        for pair in list(self.pairs):
            for w in pair:
                with contextlib.suppress(Exception):
                    w.transport.abort()

    async def close(self) -> None:
        self.drop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def flaky_live(start_live):
    """The app behind a FlakyProxy; the browser goes through the proxy."""
    live = await start_live()
    proxy = FlakyProxy(int(live.url.rstrip("/").rsplit(":", 1)[1]))
    await proxy.start()
    yield Live(f"http://127.0.0.1:{proxy.port}/", live.app, live.settings), proxy
    await proxy.close()
