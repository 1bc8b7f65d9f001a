"""End-to-end fixtures: the real app on a real port, the fake AI service of
tests/support/fake_ai_service.py streaming slowly over the callback protocol,
and headless Chromium driven by Playwright's async API in the test's own event
loop. The browser helpers the tests call live next to this file: pages.py
(what a user does), rest.py (REST calls beside the browser), proxy.py
(network blips), live.py.

Chromium is Debian's /usr/bin/chromium (`playwright install` cannot download
here); without it the browser tests are skipped with that reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from support.fake_ai_service import FakeAIService, default_script
from support.net import free_port

from chatserver.app import create_app

from .live import Live
from .proxy import FlakyProxy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.browser)
            if not os.access(CHROMIUM, os.X_OK):
                item.add_marker(skip)


@pytest.fixture
async def fake_ai(fake_service):
    """The AI service, streaming every answer (set `fake_ai.script` to change what)."""
    fake = FakeAIService(script=default_script)
    server = await fake_service(fake.app)
    fake.url = str(server.make_url("/generate"))
    yield fake
    await fake.close()


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
    # a deadline only bounds how long a broken test takes to fail; a loaded machine may need long
    page.set_default_timeout(30000)
    page.errors = []
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()


@pytest.fixture
async def client_only(aiohttp_server, settings) -> str:
    """The routes alone (no database behind them): for tests of the page's own code."""
    from chatserver import appkeys
    from chatserver.app import add_routes

    app = web.Application()
    app[appkeys.SETTINGS] = settings  # the page names the sign-in provider, if any
    add_routes(app.router)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("/"))


@pytest.fixture
async def flaky_live(start_live):
    """The app behind a FlakyProxy; the browser goes through the proxy."""
    live = await start_live()
    proxy = FlakyProxy(int(live.url.rstrip("/").rsplit(":", 1)[1]))
    await proxy.start()
    yield Live(f"http://127.0.0.1:{proxy.port}/", live.app, live.settings), proxy
    await proxy.close()
