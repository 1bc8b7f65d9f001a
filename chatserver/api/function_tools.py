"""A /v1 client's own function tools, passed through to the model server and
back (docs/openai.md, Tools): checked here, sent by the openai backend as
the request's `tools`, `tool_choice` and messages, and the model's calls
returned in OpenAI's shapes. The server never runs them.

Shared by the OpenAI-compatible APIs: a request's fields in, the calls out.
"""

from __future__ import annotations

import re
from typing import Any

from chatserver.errors import InvalidValue

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
CHOICES = ("none", "auto", "required")
MAX_TOOLS = 128


def check_tools(tools: list[Any] | None, tool_choice: Any) -> None:
    """InvalidValue unless `tools` are function tools and `tool_choice` one of OpenAI's."""
    for i, tool in enumerate(tools or []):
        where = f"tools.{i}"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            raise InvalidValue(f"{where}: expected {{\"type\": \"function\", \"function\": {{...}}}}", param=where)
        if not isinstance(function.get("name"), str) or not NAME.match(function["name"]):
            raise InvalidValue(f"{where}.function.name: must match {NAME.pattern}", param=f"{where}.function.name")
        if "parameters" in function and not isinstance(function["parameters"], dict):
            raise InvalidValue(f"{where}.function.parameters: must be a JSON schema object",
                               param=f"{where}.function.parameters")
    if len(tools or []) > MAX_TOOLS:
        raise InvalidValue(f"tools: at most {MAX_TOOLS} tools", param="tools")
    if tool_choice is None or tool_choice in CHOICES:
        return
    function = tool_choice.get("function") if isinstance(tool_choice, dict) else None
    if not (isinstance(function, dict) and tool_choice.get("type") == "function"
            and isinstance(function.get("name"), str)):
        raise InvalidValue("tool_choice: expected none, auto, required or a function", param="tool_choice")


def check_results(messages: list[dict]) -> None:
    """InvalidValue unless each tool message answers a call of an assistant message before it."""
    asked: set = set()
    for i, message in enumerate(messages):
        for call in message.get("tool_calls") or []:
            if not isinstance(call, dict) or not isinstance(call.get("id"), str):
                raise InvalidValue(f"messages.{i}.tool_calls: each call needs its id", param=f"messages.{i}")
            asked.add(call["id"])
        if message["role"] == "tool" and message.get("tool_call_id") not in asked:
            raise InvalidValue(f"messages.{i}: a tool message must answer a call of an earlier assistant message",
                               param=f"messages.{i}")


def passing(tools: list[dict] | None, tool_choice: Any, parallel: bool | None, messages: list[dict]) -> dict:
    """What the model server is sent for a request using tools: its own
    fields, and its messages as they came (they hold the calls and results)."""
    check_results(messages)
    passed: dict = {"messages": messages}
    if tools:
        passed["tools"] = tools
    if tool_choice is not None:
        passed["tool_choice"] = tool_choice
    if parallel is not None:
        passed["parallel_tool_calls"] = parallel
    return passed


def call_objects(calls: list[dict]) -> list[dict]:
    """The model's calls as a message's `tool_calls`."""
    return [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls]


def call_deltas(calls: list[dict]) -> list[dict]:
    """The model's calls as a streamed delta's `tool_calls`, each whole."""
    return [{"index": i, **call} for i, call in enumerate(call_objects(calls))]
