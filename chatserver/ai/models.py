"""Which models a chat may name (docs/rest.md, Models): the chosen backend's,
each once, tagged with the backend's name and what the model can do."""

from __future__ import annotations

from aiohttp import web

from chatserver.ai.registry import BACKEND


async def model_items(app: web.Application) -> list[dict]:
    backend = app[BACKEND]
    return [{"id": model_id, "backend": backend.name, "capabilities": capabilities(app, model_id)}
            for model_id in dict.fromkeys(await backend.models())]


def capabilities(app: web.Application, model_id: str) -> dict:
    """What the model can do: MODEL_CAPABILITIES, else tools yes, vision no, the backend's token budget."""
    backend = app[BACKEND]
    named = backend.settings.model_capabilities.get(model_id, {})
    return {"vision": named.get("vision", False), "tools": named.get("tools", True),
            "context_tokens": named.get("context_tokens", backend.token_budget())}


async def is_known_model(app: web.Application, model_id: str) -> bool:
    return model_id in await app[BACKEND].models()


def default_of(app: web.Application) -> str:
    return app[BACKEND].default_model()
