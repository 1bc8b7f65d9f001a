"""AI backends (callback service, OpenAI-compatible server, built-in search),
chosen by `settings.ai_backend`; see base.py for their interface."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from .. import appkeys
from .base import Backend
from .builtin import BuiltinBackend
from .callback import CallbackBackend
from .openai import OpenAIBackend

BACKEND = web.AppKey("ai_backend", Backend)


def make_backend(app: web.Application, session: aiohttp.ClientSession) -> Backend:
    settings = app[appkeys.SETTINGS]
    if settings.ai_backend == "callback":
        return CallbackBackend(settings, session)
    if settings.ai_backend == "openai":
        return OpenAIBackend(settings, session)
    return BuiltinBackend(app[appkeys.DB])


async def ai_ctx(app: web.Application):
    async with aiohttp.ClientSession() as session:
        app[BACKEND] = make_backend(app, session)
        yield
