"""Which models a chat may name (docs/rest.md, Models).

With the `openai` backend: the model server's own `GET /models` (kept for
OPENAI_MODELS_CACHE_SECONDS; when the server cannot be asked, the last list it
gave) plus OPENAI_MODELS and the default OPENAI_MODEL. The callback backend
offers OPENAI_MODEL and OPENAI_MODELS and passes the chosen id to the AI
service; the built-in backend is the one model `builtin`.
"""

from __future__ import annotations

import logging
import time

import aiohttp
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.base import describe
from chatserver.ai.openai import headers

log = logging.getLogger(__name__)

BUILTIN = "builtin"


def default_model(settings) -> str:
    return BUILTIN if settings.ai_backend == "builtin" else settings.OPENAI_MODEL


def requested_model(settings, chat_model: str | None) -> str:
    """The model an answer asks for: the chat's, else the default."""
    return chat_model or default_model(settings)


class Models:
    def __init__(self, settings, session: aiohttp.ClientSession):
        self.settings = settings
        self.session = session
        self._served: list[str] = []
        self._fetched_at = float("-inf")

    async def items(self) -> list[dict]:
        s = self.settings
        backend = s.ai_backend
        if backend == "builtin":
            return [{"id": BUILTIN, "backend": BUILTIN}]
        ids = [s.OPENAI_MODEL, *s.OPENAI_MODELS]
        if backend == "openai":
            ids = [*await self._server_models(), *ids]
        return [{"id": model_id, "backend": backend} for model_id in dict.fromkeys(ids)]

    async def is_known(self, model_id: str) -> bool:
        return any(item["id"] == model_id for item in await self.items())

    async def _server_models(self) -> list[str]:
        s = self.settings
        if time.monotonic() - self._fetched_at < s.OPENAI_MODELS_CACHE_SECONDS:
            return self._served
        try:
            async with self.session.get(s.OPENAI_BASE_URL.rstrip("/") + "/models", headers=headers(s),
                                        timeout=aiohttp.ClientTimeout(total=s.AI_SERVICE_TIMEOUT_SECONDS)) as resp:
                body = await resp.json(content_type=None) if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("model list: %s", describe(exc, "the model server"))
            body = None
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, list):
            self._served = [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        self._fetched_at = time.monotonic()
        return self._served


MODELS = web.AppKey("ai_models", Models)


async def is_known_model(app: web.Application, model_id: str) -> bool:
    return await app[MODELS].is_known(model_id)


def default_of(app: web.Application) -> str:
    return default_model(app[appkeys.SETTINGS])
