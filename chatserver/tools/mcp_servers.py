"""The MCP servers of MCP_SERVERS as tool sources, with the official `mcp` SDK.

Each server has one task of its own that connects (Streamable HTTP with the
configured headers, or a stdio command), lists the server's tools, keeps the
session and pings it, and connects again when it breaks, waiting longer
after each failed try (up to MAX_RETRY_SECONDS). A call uses the current
session; a call that finds the session broken (the server restarted, or
forgot an idle session) has it replaced and is sent once more. Nothing is
shared between servers, so one that is down or slow costs only its own
tools: they are listed `available: false` and are not sent to models.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from chatserver.tools.mcp_config import ServerConfig
from chatserver.tools.toolbox import NAME_RULE, Tool, ToolFailed

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
PING_SECONDS = 15.0
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 5.0
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def model_name(server: str, tool: str) -> str:
    """`<server>_<tool>` within OpenAI's name rule, always holding the tool's own name."""
    own = _NOT_IN_NAME.sub("_", tool)[:64] or "tool"
    room = 64 - len(own) - 1
    name = f"{server[:room]}_{own}" if room > 0 else own
    assert NAME_RULE.match(name)
    return name


class McpServer:
    """One configured server: a tool source (toolbox.ToolSource) and its connection task."""

    def __init__(self, config: ServerConfig):
        self.config = config
        self.source = f"mcp:{config.name}"
        self._tools: list[Tool] = []
        self._names: dict[str, str] = {}  # tool id -> the server's own name
        self._session: ClientSession | None = None
        self._ready = asyncio.Event()
        self._broken = asyncio.Event()
        self._connected = False  # the current attempt got as far as a session

    def tools(self) -> list[Tool]:
        return self._tools

    def available(self) -> bool:
        return self._session is not None

    def owns(self, tool_id: str) -> bool:
        return tool_id.startswith(self.source + ":") and len(tool_id) > len(self.source) + 1

    async def call(self, tool: Tool, arguments: dict, user_id: uuid.UUID) -> str:
        for attempt in (1, 2):
            session = await self._current()
            try:
                result = await session.call_tool(self._names[tool.id], arguments)
            except MCPError as exc:
                # the server may answer a session it forgot (restarted, or idle too long) with an error
                # of the protocol; the call never ran, so it is sent again in a new session
                if "session" not in str(exc).lower() or attempt == 2:
                    raise ToolFailed(f"the MCP server {self.config.name} refused the call: {exc}") from None
                self._drop(session)
                continue
            except Exception as exc:
                # the session broke (a restarted server, an idle session it forgot): a new one, and once more
                self._drop(session)
                if attempt == 2:
                    raise ToolFailed(f"the MCP server {self.config.name} could not be reached ({exc})") from None
                continue
            text = _text(result)
            if result.is_error:
                raise ToolFailed(text or "the tool reported an error")
            return text
        raise AssertionError("unreachable")

    async def _current(self) -> ClientSession:
        while self._session is None:
            await self._ready.wait()
        return self._session

    def _drop(self, session: ClientSession) -> None:
        if self._session is session:
            self._session = None
            self._ready.clear()
            self._broken.set()

    async def run(self) -> None:
        """Connect, keep the session, connect again: until cancelled. One log
        line when it connects, when it disconnects, and when it first cannot."""
        wait, failing = FIRST_RETRY_SECONDS, False
        while True:
            self._connected = False
            try:
                reason = await self._connect_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = _reason(exc)
            self._session = None
            self._ready.clear()
            if self._connected:
                log.warning("MCP server %s disconnected: %s", self.config.name, reason)
                wait, failing = FIRST_RETRY_SECONDS, False
                continue  # at once again
            if not failing:
                log.warning("MCP server %s: cannot connect (%s); trying again", self.config.name, reason)
            failing = True
            await asyncio.sleep(wait)
            wait = min(wait * 2, MAX_RETRY_SECONDS)

    async def _connect_and_watch(self) -> str:
        """Why the session ended, once it has."""
        async with self._transport() as streams, ClientSession(streams[0], streams[1]) as session:
            await asyncio.wait_for(session.initialize(), CONNECT_TIMEOUT_SECONDS)
            listed = await asyncio.wait_for(session.list_tools(), CONNECT_TIMEOUT_SECONDS)
            self._tools = [self._tool(t.name, t.description or "", t.input_schema) for t in listed.tools]
            self._names = {t.id: t.id.split(":", 2)[2] for t in self._tools}
            self._broken.clear()
            self._session = session
            self._connected = True
            self._ready.set()
            log.info("MCP server %s connected: %d tools", self.config.name, len(self._tools))
            try:
                return await self._watch(session)
            finally:
                self._session = None
                self._ready.clear()

    async def _watch(self, session: ClientSession) -> str:
        """Until the session breaks: why it did."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._broken.wait(), PING_SECONDS)
                return "a call found the session broken"
            try:
                await asyncio.wait_for(session.send_ping(), CONNECT_TIMEOUT_SECONDS)
            except Exception as exc:
                return f"no answer to a ping ({_reason(exc)})"

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple]:
        c = self.config
        if c.url:
            async with httpx2.AsyncClient(headers=c.headers,
                                          timeout=httpx2.Timeout(CONNECT_TIMEOUT_SECONDS, read=300.0)) as client, \
                    streamable_http_client(c.url, http_client=client) as streams:
                yield streams
        else:
            async with stdio_client(StdioServerParameters(command=c.command, args=list(c.args),
                                                          env=c.env)) as streams:
                yield streams

    def _tool(self, name: str, description: str, schema: dict) -> Tool:
        return Tool(id=f"{self.source}:{name}", name=model_name(self.config.name, name), description=description,
                    input_schema=schema or {"type": "object", "properties": {}}, source=self.source)


def _text(result: Any) -> str:
    parts = []
    for block in result.content:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else block.model_dump_json(exclude_none=True))
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _reason(exc: BaseException) -> str:
    """The innermost cause of an exception group, in a few words."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
