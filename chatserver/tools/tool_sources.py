"""The tool sources of one process, made once per app."""

from __future__ import annotations

from aiohttp import web

from chatserver import appkeys
from chatserver.tools.builtin_tools import BuiltinTools
from chatserver.tools.toolbox import TOOLBOX, Toolbox


async def toolbox_ctx(app: web.Application):
    app[TOOLBOX] = Toolbox([BuiltinTools(app[appkeys.DB])], app[appkeys.SETTINGS], app[appkeys.METRICS])
    yield
