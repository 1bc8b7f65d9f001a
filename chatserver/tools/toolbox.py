"""The tools of this process behind one interface, and running one call.

A tool is a function with a JSON schema. Each `ToolSource` (the built-ins,
each MCP server) lists its tools and calls them; the `Toolbox` joins them,
knows which a chat may name, and runs a call bounded by
TOOL_TIMEOUT_SECONDS with its output cut to TOOL_OUTPUT_MAX_CHARS. A call
that fails or times out becomes an error result, never an exception: the
model is told and goes on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Protocol

from aiohttp import web

from chatserver.config import Settings
from chatserver.errors import UnknownTools
from chatserver.metrics import Metrics

log = logging.getLogger(__name__)

# OpenAI's rule for a function name
NAME_RULE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
CUT = "\n[... output cut at {} characters]"


@dataclasses.dataclass(frozen=True)
class Tool:
    id: str  # "builtin:<name>" or "mcp:<server>:<name>"
    name: str  # what the model calls it, matching NAME_RULE
    description: str
    input_schema: dict
    source: str  # "builtin" or "mcp:<server>"

    def function(self) -> dict:
        """The tool as an OpenAI function tool."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.input_schema}}


class ToolFailed(Exception):
    """A call that could not give a result; its message is what the model is told."""


class ToolSource(Protocol):
    source: str

    def tools(self) -> list[Tool]:
        """The tools known now (an MCP server down at start has none yet)."""

    def available(self) -> bool:
        """Whether calls can be made now."""

    def owns(self, tool_id: str) -> bool:
        """Whether an id is one of this source's, listed or not yet discovered."""

    async def call(self, tool: Tool, arguments: dict, user_id: uuid.UUID) -> str:
        """The call's text output; ToolFailed (or any exception) when it failed."""


@dataclasses.dataclass
class Outcome:
    status: str  # "done" or "failed"
    output: str
    error: str | None

    def for_model(self) -> str:
        return self.output if self.status == "done" else f"Error: {self.error}"


class Toolbox:
    def __init__(self, sources: Iterable[ToolSource], settings: Settings, metrics: Metrics):
        self.sources = list(sources)
        self.settings, self.metrics = settings, metrics

    def listing(self) -> list[dict]:
        """Every known tool, with whether it can be called now (GET /api/tools)."""
        found = []
        for source in self.sources:
            up = source.available()
            found += [{"id": t.id, "name": t.name, "description": t.description, "input_schema": t.input_schema,
                       "source": t.source, "available": up} for t in source.tools()]
        return found

    def check(self, tool_ids: Iterable[str]) -> None:
        """UnknownTools unless every id is a tool of a configured source (a
        server that is down may not have told its tools yet)."""
        known = {t["id"] for t in self.listing()}
        unknown = [i for i in tool_ids if i not in known and not any(s.owns(i) for s in self.sources)]
        if unknown:
            raise UnknownTools(unknown)

    def for_chat(self, tool_ids: Iterable[str]) -> list[Tool]:
        """The chat's tools that can be called now, in the chat's order."""
        wanted = list(dict.fromkeys(tool_ids))
        by_id = {t.id: t for s in self.sources if s.available() for t in s.tools()}
        return [by_id[i] for i in wanted if i in by_id]

    async def run(self, tool: Tool, raw_arguments: str, user_id: uuid.UUID) -> Outcome:
        """One call, bounded in time and output; failures become the Outcome's error."""
        source = next(s for s in self.sources if s.source == tool.source)
        started = time.monotonic()
        try:
            arguments = parse_arguments(raw_arguments)
            output = await asyncio.wait_for(source.call(tool, arguments, user_id),
                                            self.settings.TOOL_TIMEOUT_SECONDS)
        except ToolFailed as exc:
            outcome = Outcome("failed", "", str(exc))
        except TimeoutError:
            outcome = Outcome("failed", "", f"the tool did not answer within {self.settings.TOOL_TIMEOUT_SECONDS:g} s")
        except Exception as exc:  # a tool's own bug must not fail the answer
            log.warning("tool %s failed: %r", tool.id, exc)
            outcome = Outcome("failed", "", f"the tool failed ({type(exc).__name__}: {exc})")
        else:
            outcome = Outcome("done", cut(output, self.settings.TOOL_OUTPUT_MAX_CHARS), None)
        self.metrics.count_tool_call(tool.id, outcome.status, time.monotonic() - started)
        return outcome


def parse_arguments(raw: str) -> dict:
    """The model's arguments (a JSON object as text; empty means none)."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ToolFailed("the arguments are not valid JSON") from None
    if not isinstance(value, dict):
        raise ToolFailed("the arguments must be a JSON object")
    return value


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = CUT.format(limit)
    return text[: max(0, limit - len(note))] + note


TOOLBOX = web.AppKey("toolbox", Toolbox)
