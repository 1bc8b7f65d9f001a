"""The external AI service of API.md: one POST per answer; the text then
arrives through the callback endpoint."""

from __future__ import annotations

import asyncio

import aiohttp

from ..callback import callback_url
from .base import BackendRejected, BackendUnavailable, Write
from .context import Context


class CallbackBackend:
    remote = True

    def __init__(self, settings, session: aiohttp.ClientSession):
        self.settings = settings
        self.session = session

    def request_body(self, context: Context) -> dict:
        return {
            "message": context.message,
            "conversation_history": context.history,
            "callback_url": callback_url(self.settings, context.message_id),
            "message_id": str(context.message_id),
            "chat_id": str(context.chat_id),
            "files": context.files,
        }

    async def generate(self, context: Context, write: Write) -> None:
        settings = self.settings
        try:
            async with self.session.post(
                settings.AI_SERVICE_URL,
                json=self.request_body(context),
                headers={"Authorization": f"Bearer {settings.AI_SERVICE_API_KEY}"},
                timeout=aiohttp.ClientTimeout(total=settings.AI_SERVICE_TIMEOUT_SECONDS),
            ) as resp:
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise BackendUnavailable(f"AI service unreachable: {exc.__class__.__name__}") from exc
        if 400 <= status < 500:
            raise BackendRejected(f"AI service refused the request (HTTP {status})")
        if not 200 <= status < 300:
            raise BackendUnavailable(f"AI service failed (HTTP {status})")
        return None
