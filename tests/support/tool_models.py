"""Helpers for the tool tests: an OpenAI-compatible model server that asks for
tool calls (streamed in pieces as real servers do), and a tool source of
test tools added to a running app's toolbox through its public interface."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

from aiohttp import web

from chatserver.tools.toolbox import TOOLBOX, Tool, ToolFailed
from support.served_app import app_of

Plan = Callable[[dict], dict]


def tool_results(body: dict) -> list[dict]:
    """The tool messages a request carries."""
    return [m for m in body["messages"] if m["role"] == "tool"]


def rounds_done(body: dict) -> int:
    return sum(1 for m in body["messages"] if m["role"] == "assistant" and m.get("tool_calls"))


def calls(*pairs: tuple[str, dict], text: str = "") -> dict:
    return {"calls": list(pairs), "text": text}


def say(text: str) -> dict:
    return {"text": text}


class FakeToolModel:
    """A /v1/chat/completions server whose `plan(request)` says what to answer:
    `say(text)` or `calls((name, arguments), ..., text=...)`. With
    `repeat_name`, every piece of a call carries its id and whole name again,
    as llama-cpp-python's server sends them (OpenAI sends them once)."""

    def __init__(self, plan: Plan, repeat_name: bool = False):
        self.plan = plan
        self.repeat_name = repeat_name
        self.requests: list[dict] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        answer = self.plan(body)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(delta: dict, finish: str | None = None) -> None:
            event = {"model": "tool-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await resp.write(f"data: {json.dumps(event)}\n\n".encode())

        if answer.get("text"):
            for word in answer["text"].split(" "):
                await send({"content": word + " " if word != answer["text"].split(" ")[-1] else word})
        for index, (name, arguments) in enumerate(answer.get("calls", [])):
            raw, call_id = json.dumps(arguments), f"call_{uuid.uuid4().hex[:8]}"
            await send({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                        "function": {"name": name, "arguments": ""}}]})
            for part in (raw[: len(raw) // 2], raw[len(raw) // 2:]):
                again = {"id": call_id, "type": "function"} if self.repeat_name else {}
                function = {"name": name, "arguments": part} if self.repeat_name else {"arguments": part}
                await send({"tool_calls": [{"index": index, **again, "function": function}]})
        await send({}, "tool_calls" if answer.get("calls") else "stop")
        usage = {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
        await resp.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
        return resp


def _tool(name: str, description: str) -> Tool:
    return Tool(id=f"test:{name}", name=name, description=description, source="test",
                input_schema={"type": "object", "properties": {"text": {"type": "string"}}})


class TestTools:
    """Tools whose behaviour the tests control: `echo` returns its text,
    `pair` waits until two calls of it run at once, `hang` never answers
    (it records being cancelled), `explode` raises."""

    __test__ = False  # not a test class for pytest
    source = "test"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled = asyncio.Event()
        self.running = asyncio.Event()
        self._pair = asyncio.Barrier(2)
        self.arguments: list[dict] = []

    def tools(self) -> list[Tool]:
        return [_tool("echo", "Returns its text."), _tool("pair", "Waits for a second call of itself."),
                _tool("hang", "Never answers."), _tool("explode", "Always fails.")]

    def available(self) -> bool:
        return True

    def owns(self, tool_id: str) -> bool:
        return False

    async def call(self, tool: Tool, arguments: dict, user_id: uuid.UUID) -> str:
        self.started.append(tool.name)
        self.arguments.append(arguments)
        if tool.name == "echo":
            return str(arguments.get("text", ""))
        if tool.name == "pair":
            async with asyncio.timeout(10):
                await self._pair.wait()
            return "paired"
        if tool.name == "hang":
            self.running.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        raise ToolFailed("the tool exploded")


def add_test_tools(client) -> TestTools:
    return add_test_tools_to_app(app_of(client))


def add_test_tools_to_app(app) -> TestTools:
    tools = TestTools()
    app[TOOLBOX].sources.append(tools)
    return tools


async def start_tool_model(fake_service, make_client, plan: Plan, repeat_name: bool = False, **settings):
    model = FakeToolModel(plan, repeat_name)
    server = await fake_service(model.app)
    client = await make_client(OPENAI_BASE_URL=str(server.make_url("/v1")), OPENAI_API_KEY="sk-test",
                               OPENAI_MODEL="test-model", **settings)
    return model, client
