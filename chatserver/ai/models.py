"""Which models a chat may name (API.md "Models")."""

from __future__ import annotations

from aiohttp import web


async def is_known_model(app: web.Application, model_id: str) -> bool:
    return bool(model_id)
