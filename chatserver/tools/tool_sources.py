"""The tool sources of one process, made once per app: the built-ins, and
one MCP server (with its connection task) per entry of MCP_SERVERS."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from chatserver import appkeys
from chatserver.tools.builtin_tools import BuiltinTools
from chatserver.tools.mcp_config import parse_servers
from chatserver.tools.mcp_servers import McpServer
from chatserver.tools.toolbox import TOOLBOX, Toolbox, ToolSource


async def toolbox_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    servers = [McpServer(config) for config in parse_servers(settings.MCP_SERVERS)]
    sources: list[ToolSource] = [BuiltinTools(app[appkeys.DB]), *servers]
    app[TOOLBOX] = Toolbox(sources, settings, app[appkeys.METRICS])
    tasks = [asyncio.create_task(server.run(), name=f"mcp:{server.config.name}") for server in servers]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
