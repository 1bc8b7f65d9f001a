"""REST calls from the test itself, next to what the browser does."""

from __future__ import annotations

import aiohttp

from .live import Live
from .pages import token_of


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
    """A Rest client signed in as the user of that page."""
    return Rest(live, await token_of(page))
