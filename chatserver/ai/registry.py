"""Every AI backend, and the one place that picks one by the settings.

AI_BACKEND names the backend; empty picks the first one in BACKENDS whose
`needs` are all set (so the order below is the order of preference). A name
no backend has, or a backend without the settings it needs, stops the app
being built with a ConfigError naming the setting.

The chosen backend also says how many answers one process generates at once
(`answers_at_once`), unless QUEUE_AI_CONCURRENCY sets a number.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from chatserver import appkeys
from chatserver.ai import tokens
from chatserver.ai.base import Backend
from chatserver.ai.builtin import BuiltinBackend
from chatserver.ai.callback import CallbackBackend
from chatserver.ai.openai import OpenAIBackend
from chatserver.config import ConfigError, Settings

BACKENDS: tuple[type[Backend], ...] = (CallbackBackend, OpenAIBackend, BuiltinBackend)
BACKEND = web.AppKey("ai_backend", Backend)
# the backend's requests besides answers (the model list), which must not wait for answers' sockets
CONNECTIONS_BESIDES_ANSWERS = 8


def chosen(settings: Settings) -> type[Backend]:
    """The backend the settings pick, or a ConfigError saying why none can run."""
    if not settings.AI_BACKEND:
        # the last backend needs nothing, so one is always found
        return next(b for b in BACKENDS if all(getattr(settings, key) for key in b.needs))
    by_name = {b.name: b for b in BACKENDS}
    backend = by_name.get(settings.AI_BACKEND)
    if backend is None:
        *first, last = by_name
        raise ConfigError(f"AI_BACKEND: unknown backend {settings.AI_BACKEND!r} (use {', '.join(first)} or {last})")
    for key in backend.needs:
        if not getattr(settings, key):
            raise ConfigError(f"{key}: must be set when AI_BACKEND is {backend.name}")
    return backend


def answers_at_once(settings: Settings) -> int:
    """How many answers one process generates at once: QUEUE_AI_CONCURRENCY,
    or with 0 there the chosen backend's own limit."""
    return settings.QUEUE_AI_CONCURRENCY or chosen(settings).answers_at_once


async def ai_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    # the job queue bounds the answers at once; aiohttp's own bound (100 connections) would make
    # the answers past it wait for whole answers before their request is even sent
    connector = aiohttp.TCPConnector(limit=answers_at_once(settings) + CONNECTIONS_BESIDES_ANSWERS)
    async with aiohttp.ClientSession(connector=connector) as session:
        backend = app[BACKEND] = chosen(settings)(settings, app[appkeys.DB], session)
        if backend.token_budget() is not None:
            # now, not at the first answers: many arriving together would all wait for it
            await tokens.load()
        yield
