"""Which models a chat may name (docs/rest.md, Models): the chosen backend's,
each once, tagged with the backend's name."""

from __future__ import annotations

from aiohttp import web

from chatserver.ai.registry import BACKEND


async def model_items(app: web.Application) -> list[dict]:
    backend = app[BACKEND]
    return [{"id": model_id, "backend": backend.name} for model_id in dict.fromkeys(await backend.models())]


async def is_known_model(app: web.Application, model_id: str) -> bool:
    return model_id in await app[BACKEND].models()


def default_of(app: web.Application) -> str:
    return app[BACKEND].default_model()
