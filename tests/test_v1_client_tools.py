"""A /v1 client's own tools, with the official `openai` SDK: tools and
tool_choice reach the model server, its tool_calls come back (whole and
streamed), the client's calls and results go back in, and the server never
runs them."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from support.accounts import register
from support.tool_models import FakeToolModel, calls, say, start_tool_model, tool_results

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
QUESTION = [{"role": "user", "content": "Weather in Oslo?"}]


def weather_plan(body: dict) -> dict:
    results = tool_results(body)
    if not results:
        return calls(("get_weather", {"city": "Oslo"}))
    return say(f"It is {results[0]['content']}.")


async def test_client_tools_pass_through_and_calls_come_back(fake_service, make_client, sdk):  # noqa: F811
    model, client = await start_tool_model(fake_service, make_client, weather_plan)
    api = await sdk(client)
    done = await api.chat.completions.create(model="test-model", messages=QUESTION, tools=[WEATHER],
                                             tool_choice="auto")
    [request] = model.requests
    assert request["tools"] == [WEATHER] and request["tool_choice"] == "auto"
    assert request["messages"] == [{"role": "user", "content": "Weather in Oslo?"}]
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert (call.type, call.function.name, json.loads(call.function.arguments)) == (
        "function", "get_weather", {"city": "Oslo"})
    assert call.id.startswith("call_")


async def test_the_clients_results_go_back_to_the_model(fake_service, make_client, sdk):  # noqa: F811
    model, client = await start_tool_model(fake_service, make_client, weather_plan)
    api = await sdk(client)
    first = await api.chat.completions.create(model="test-model", messages=QUESTION, tools=[WEATHER])
    asked = first.choices[0].message
    messages = [*QUESTION, asked.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": asked.tool_calls[0].id, "content": "3 degrees and rainy"}]
    second = await api.chat.completions.create(model="test-model", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "It is 3 degrees and rainy."
    assert second.choices[0].finish_reason == "stop"
    sent = model.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[2] == {"role": "tool", "content": "3 degrees and rainy", "tool_call_id": asked.tool_calls[0].id}


async def test_streamed_tool_calls_arrive_as_deltas(fake_service, make_client, sdk):  # noqa: F811
    model, client = await start_tool_model(fake_service, make_client, weather_plan)
    api = await sdk(client)
    stream = await api.chat.completions.create(model="test-model", messages=QUESTION, tools=[WEATHER],
                                               stream=True)
    chunks = [chunk async for chunk in stream]
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert [(d.index, d.function.name, json.loads(d.function.arguments)) for d in deltas] == [
        (0, "get_weather", {"city": "Oslo"})]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_the_server_runs_no_client_tool(fake_service, make_client, sdk):  # noqa: F811
    model, client = await start_tool_model(fake_service, make_client, weather_plan)
    api = await sdk(client)
    await api.chat.completions.create(model="test-model", messages=QUESTION, tools=[WEATHER])
    # one request: the call went back to the client, nothing answered it here
    assert len(model.requests) == 1


@pytest.mark.parametrize("tools, choice, param", [
    ([{"type": "function", "function": {"name": "bad name!"}}], None, "tools.0.function.name"),
    ([{"type": "retrieval"}], None, "tools.0"),
    ([WEATHER], "sometimes", "tool_choice"),
])
async def test_malformed_tools_are_400(fake_service, make_client, sdk, tools, choice, param):  # noqa: F811
    model, client = await start_tool_model(fake_service, make_client, weather_plan)
    api = await sdk(client)
    extra = {"tool_choice": choice} if choice else {}
    with pytest.raises(openai.BadRequestError) as caught:
        await api.chat.completions.create(model="test-model", messages=QUESTION, tools=tools, **extra)
    assert caught.value.body["param"] == param
    assert model.requests == []


# ---- a client's tools in a chat that also names server tools (docs/openai.md, Tools)

SERVER_TOOLS = ["builtin:search_chats"]


def weather_when_offered(body: dict) -> dict:
    return weather_plan(body) if body.get("tools") else say("Hello.")


async def the_only_chat(client, account) -> dict:
    async with asyncio.timeout(10):
        while True:
            resp = await client.get("/api/chats", headers=account.headers)
            items = (await resp.json())["items"]
            if items:
                [chat] = items
                return chat
            await asyncio.sleep(0.02)


async def give_server_tools(client, account, chat_id: str) -> None:
    resp = await client.patch(f"/api/chats/{chat_id}", json={"tools": SERVER_TOOLS}, headers=account.headers)
    assert resp.status == 200, await resp.text()


async def stored_answer(client, account, chat_id: str) -> dict:
    resp = await client.get(f"/api/chats/{chat_id}/messages", headers=account.headers)
    return (await resp.json())["items"][-1]


async def test_a_completion_with_its_own_tools_in_a_chat_with_server_tools_returns_the_call(
        fake_service, make_client, sdk):  # noqa: F811
    model = FakeToolModel(weather_when_offered)
    server = await fake_service(model.app)
    settings = {"OPENAI_BASE_URL": str(server.make_url("/v1")), "OPENAI_API_KEY": "sk-test",
                "OPENAI_MODEL": "test-model"}
    # the call's chat is made by a process that runs no answers, so that it can
    # be given server tools before another process (same database and queue) answers
    front = await make_client(start_workers=False, **settings)
    account = await register(front)
    api = await sdk(front, account)
    call = asyncio.create_task(api.chat.completions.create(model="test-model", messages=QUESTION, tools=[WEATHER]))
    chat = await the_only_chat(front, account)
    await give_server_tools(front, account, chat["id"])
    await make_client(**settings)
    done = await asyncio.wait_for(call, 30)
    assert done.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in done.choices[0].message.tool_calls] == ["get_weather"]
    [request] = model.requests
    assert [t["function"]["name"] for t in request["tools"]] == ["get_weather"]
    assert (await stored_answer(front, account, chat["id"]))["steps"] == []


async def test_a_response_with_its_own_tools_in_a_chat_with_server_tools_returns_the_call(
        fake_service, make_client, sdk):  # noqa: F811
    model, client = await start_tool_model(fake_service, make_client, weather_when_offered)
    account = await register(client)
    api = await sdk(client, account)
    first = await api.responses.create(model="test-model", input="Hello")
    chat = await the_only_chat(client, account)
    await give_server_tools(client, account, chat["id"])
    weather = {"type": "function", **WEATHER["function"]}
    second = await api.responses.create(model="test-model", previous_response_id=first.id,
                                        input="Weather in Oslo?", tools=[weather])
    assert [(item.type, item.name, json.loads(item.arguments)) for item in second.output] == [
        ("function_call", "get_weather", {"city": "Oslo"})]
    assert len(model.requests) == 2
    assert [t["function"]["name"] for t in model.requests[1]["tools"]] == ["get_weather"]
    assert (await stored_answer(client, account, chat["id"]))["steps"] == []
