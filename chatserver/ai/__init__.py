"""AI backends (callback service, OpenAI-compatible server, built-in search),
chosen by `settings.ai_backend`; see base.py for their interface. answer_job.py is
the `ai.generate` job, context.py what a backend is told, sweep.py the check
that no answer hangs.

May import `data`, `live`, `jobs` and infrastructure, never `api`. Backends
only emit text into the live layer, through the job's `write`.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from chatserver import appkeys
from chatserver.ai.base import Backend
from chatserver.ai.builtin import BuiltinBackend
from chatserver.ai.callback import CallbackBackend
from chatserver.ai.models import MODELS, Models
from chatserver.ai.openai import OpenAIBackend

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
        app[MODELS] = Models(app[appkeys.SETTINGS], session)
        yield
