"""Page helpers: what a user does in the web client, and what the page shows."""

from __future__ import annotations

import uuid
from pathlib import Path

from .live import Live

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


async def screenshot(page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    await page.screenshot(path=str(path), full_page=False)
    return path


async def register_in_browser(page, live: Live, email: str | None = None, password: str = "correct horse") -> str:
    """Open the client and create an account through the form; returns the email."""
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
    return await page.evaluate("localStorage.getItem('chatserver.token')")


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
        # the box is emptied once the server has the message, which may come after the answer shows
        await page.wait_for_function("() => document.getElementById('composer-input').value === ''")


def assistant(page, index: int = -1):
    items = page.locator("#messages > li.assistant")
    return items.last if index == -1 else items.nth(index)


def unexpected_errors(page) -> list[str]:
    """Console errors other than the browser's own reports of HTTP error
    statuses and refused WebSocket upgrades (which the client handles)."""
    routine = ("Failed to load resource", "WebSocket connection to")
    return [e for e in page.errors if not e.startswith(routine)]
