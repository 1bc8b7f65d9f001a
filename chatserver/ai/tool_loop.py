"""The answer loop with tools: the job's, not a backend's.

When the chat names tools that can be called now, the backend
`calls_tools` and the request brought no tools of its own (a /v1 client's),
the model is sent them; each time it asks for calls, they run (in parallel,
each bounded by the toolbox), every call is a step watchers see start and
end, the results go back as `tool` messages, and the model is asked again:
until it answers with text, or TOOL_MAX_STEPS rounds are spent (then the
answer says so and ends). A cancel cancels the task running this,
and with it the calls in flight.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

from aiohttp import web

from chatserver import appkeys
from chatserver.ai.base import Backend, Result, Write
from chatserver.ai.context import Context
from chatserver.tools.toolbox import TOOLBOX, Outcome, Tool, ToolFailed, parse_arguments

TOO_MANY_ROUNDS = ("[The answer stopped here: the model asked for more than {} rounds of tool calls, "
                   "the most one answer may make.]")


class StepWrite(Write, Protocol):
    async def step(self, step: dict) -> None:
        """Tell watchers of a call starting or ending (docs/tools.md, Steps)."""


async def answer(app: web.Application, backend: Backend, context: Context,
                 write: StepWrite) -> list[dict] | Result | None:
    """What `backend.generate` returns, after as many rounds of tool calls as the model asked for."""
    # A /v1 request with its own tools is answered with those alone: any call
    # the model makes then goes back to the client, never run here by mistake
    # (and the client's messages, sent as they came, have no room for our rounds).
    offered = backend.calls_tools and not context.client_tools
    tools = app[TOOLBOX].for_chat(context.tools or []) if offered else []
    if not tools:
        return await backend.generate(context, write)
    by_name = {t.name: t for t in tools}
    context.tool_specs = [t.function() for t in tools]
    max_rounds = app[appkeys.SETTINGS].TOOL_MAX_STEPS
    usage: dict[str, int] = {}
    model = None
    for _ in range(max_rounds):
        result = await backend.generate(context, write)
        if not isinstance(result, Result):
            return result
        _add_usage(usage, result.usage)
        model = result.model
        if not result.tool_calls:
            result.usage = usage or None
            return result
        await _run_round(app, context, by_name, result, write)
    await write(("\n\n" if _said_something(context) else "") + TOO_MANY_ROUNDS.format(max_rounds))
    return Result(finish_reason="stop", usage=usage or None, model=model)


async def _run_round(app: web.Application, context: Context, by_name: dict[str, Tool], result: Result,
                     write: StepWrite) -> None:
    calls = [{**call, "id": call["id"] or f"call_{uuid.uuid4().hex[:24]}"} for call in result.tool_calls]
    context.tool_turns.append({
        # a string even when the model wrote nothing: llama-cpp-python's server refuses a null content
        "role": "assistant", "content": result.text,
        "tool_calls": [{"id": c["id"], "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]})
    outcomes = await asyncio.gather(*(_call(app, context, by_name, call, write) for call in calls))
    for call, outcome in zip(calls, outcomes, strict=True):
        context.tool_turns.append({"role": "tool", "tool_call_id": call["id"], "content": outcome.for_model()})


async def _call(app: web.Application, context: Context, by_name: dict[str, Tool], call: dict,
                write: StepWrite) -> Outcome:
    tool = by_name.get(call["name"])
    try:
        arguments = parse_arguments(call["arguments"])
    except ToolFailed:
        arguments = {}
    step = {"id": uuid.uuid4().hex, "tool": tool.id if tool else call["name"], "arguments": arguments,
            "status": "running", "output": "", "error": None}
    await write.step(step)
    if tool is None:
        outcome = Outcome("failed", "", f"no tool named {call['name']!r} (the tools are: {', '.join(by_name)})")
    else:
        outcome = await app[TOOLBOX].run(tool, call["arguments"], context.user_id)
    await write.step({**step, "status": outcome.status, "output": outcome.output, "error": outcome.error})
    return outcome


def _add_usage(total: dict[str, int], usage: dict | None) -> None:
    for key, value in (usage or {}).items():
        total[key] = total.get(key, 0) + value


def _said_something(context: Context) -> bool:
    return any(turn.get("content") for turn in context.tool_turns if turn["role"] == "assistant")
