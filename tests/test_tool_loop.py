"""The answer loop with tools on the openai backend, against a model server
that asks for tool calls: one, several at once, several rounds, forever;
calls that fail, time out or are cancelled; steps stored and streamed."""

import asyncio
import json

from llmock.testing import LLMockServer
from support.accounts import create_chat, register
from support.messages import get_message, idle, post_message
from support.served_app import app_of
from support.tool_models import add_test_tools, calls, rounds_done, say, start_tool_model, tool_results
from support.ws_frames import follow, open_ws, read_to_end, receive

from chatserver.ai.answer_job import INTERRUPTED, generate
from chatserver.live.answers import ANSWERS, STEP_CUT
from chatserver.live.state import ANSWER_STATE
from chatserver.live.wire import Event
from chatserver.tools.toolbox import TOOLBOX


async def tooled_chat(client, account, tools: list[str]) -> dict:
    chat = await create_chat(client, account)
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": tools}, headers=account.headers)
    assert resp.status == 200, await resp.text()
    return chat


def one_call_then_answer(body: dict) -> dict:
    if not tool_results(body):
        return calls(("search_chats", {"query": "zanzibar"}), text="Let me look.")
    return say("You went to Zanzibar.")


async def test_a_tool_call_runs_and_its_result_goes_back_to_the_model(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client, one_call_then_answer)
    account = await register(client)
    earlier = await create_chat(client, account)
    await post_message(client, account, earlier["id"], "my zanzibar itinerary")
    await idle(client)
    chat = await tooled_chat(client, account, ["builtin:search_chats"])
    answer = (await post_message(client, account, chat["id"], "Where did I go?"))["assistant_message"]
    await idle(client)
    first, second = model.requests[-2:]
    assert [t["function"]["name"] for t in first["tools"]] == ["search_chats"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["query"]
    [asked] = [m for m in second["messages"] if m.get("tool_calls")]
    assert asked["content"] == "Let me look."
    assert asked["tool_calls"][0]["function"] == {"name": "search_chats", "arguments": '{"query": "zanzibar"}'}
    [result] = tool_results(second)
    assert result["tool_call_id"] == asked["tool_calls"][0]["id"]
    assert json.loads(result["content"])[0]["chat_id"] == earlier["id"]
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("complete", "Let me look.You went to Zanzibar.")
    [step] = stored["steps"]
    assert (step["tool"], step["arguments"], step["status"], step["error"]) == (
        "builtin:search_chats", {"query": "zanzibar"}, "done", None)
    assert json.loads(step["output"])[0]["message_id"]
    assert stored["usage"] == {"prompt_tokens": 20, "completion_tokens": 10}


async def test_a_server_repeating_the_name_in_every_piece_of_a_call_is_understood(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client, one_call_then_answer, repeat_name=True)
    account = await register(client)
    chat = await tooled_chat(client, account, ["builtin:search_chats"])
    answer = (await post_message(client, account, chat["id"], "Where did I go?"))["assistant_message"]
    await idle(client)
    [asked] = [m for m in model.requests[-1]["messages"] if m.get("tool_calls")]
    assert asked["tool_calls"][0]["function"] == {"name": "search_chats", "arguments": '{"query": "zanzibar"}'}
    [step] = (await get_message(client, account, answer["id"]))["steps"]
    assert (step["tool"], step["arguments"], step["status"]) == ("builtin:search_chats", {"query": "zanzibar"}, "done")


async def test_a_call_the_model_made_without_text_goes_back_with_empty_text_not_null(fake_service, make_client):
    def plan(body):
        return calls(("search_chats", {"query": "zanzibar"})) if not tool_results(body) else say("Nothing.")

    model, client = await start_tool_model(fake_service, make_client, plan)
    account = await register(client)
    chat = await tooled_chat(client, account, ["builtin:search_chats"])
    await post_message(client, account, chat["id"], "Where did I go?")
    await idle(client)
    [asked] = [m for m in model.requests[-1]["messages"] if m.get("tool_calls")]
    assert asked["content"] == ""


async def test_a_chat_without_tools_sends_none(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client, lambda body: say("Plain."))
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "Hi"))["assistant_message"]
    await idle(client)
    assert "tools" not in model.requests[-1]
    assert (await get_message(client, account, answer["id"]))["steps"] == []


async def test_calls_asked_for_together_run_in_parallel(fake_service, make_client):
    def plan(body):
        if not tool_results(body):
            return calls(("pair", {"text": "a"}), ("pair", {"text": "b"}), ("echo", {"text": "third"}))
        return say("Both paired.")

    model, client = await start_tool_model(fake_service, make_client, plan)
    tools = add_test_tools(client)
    account = await register(client)
    chat = await tooled_chat(client, account, ["test:pair", "test:echo"])
    answer = (await post_message(client, account, chat["id"], "Pair up"))["assistant_message"]
    await idle(client)
    # each `pair` call returns only once the other one runs at the same time
    assert [r["content"] for r in tool_results(model.requests[-1])] == ["paired", "paired", "third"]
    stored = await get_message(client, account, answer["id"])
    assert [(s["tool"], s["status"], s["output"]) for s in stored["steps"]] == [
        ("test:pair", "done", "paired"), ("test:pair", "done", "paired"), ("test:echo", "done", "third")]
    assert sorted(tools.started) == ["echo", "pair", "pair"]


async def test_several_rounds_each_see_the_results_before(fake_service, make_client):
    def plan(body):
        done = rounds_done(body)
        if done < 3:
            return calls(("echo", {"text": f"round {done + 1}"}))
        return say("Three rounds.")

    model, client = await start_tool_model(fake_service, make_client, plan)
    add_test_tools(client)
    account = await register(client)
    chat = await tooled_chat(client, account, ["test:echo"])
    answer = (await post_message(client, account, chat["id"], "Go round"))["assistant_message"]
    await idle(client)
    assert len(model.requests) == 4
    assert [r["content"] for r in tool_results(model.requests[-1])] == ["round 1", "round 2", "round 3"]
    stored = await get_message(client, account, answer["id"])
    assert [s["output"] for s in stored["steps"]] == ["round 1", "round 2", "round 3"]
    assert (stored["status"], stored["content"]) == ("complete", "Three rounds.")


async def test_a_model_that_never_stops_calling_ends_after_the_most_rounds(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client,
                                           lambda body: calls(("echo", {"text": "again"})), TOOL_MAX_STEPS=3)
    add_test_tools(client)
    account = await register(client)
    chat = await tooled_chat(client, account, ["test:echo"])
    answer = (await post_message(client, account, chat["id"], "Loop"))["assistant_message"]
    await idle(client)
    assert len(model.requests) == 3
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete"
    assert len(stored["steps"]) == 3
    assert stored["content"] == ("[The answer stopped here: the model asked for more than 3 rounds of tool calls, "
                                 "the most one answer may make.]")


async def test_a_failing_or_unknown_tool_becomes_an_error_the_model_sees(fake_service, make_client):
    def plan(body):
        if not tool_results(body):
            return calls(("explode", {}), ("no_such_tool", {"x": 1}))
        return say("Both failed.")

    model, client = await start_tool_model(fake_service, make_client, plan)
    add_test_tools(client)
    account = await register(client)
    chat = await tooled_chat(client, account, ["test:explode"])
    answer = (await post_message(client, account, chat["id"], "Break"))["assistant_message"]
    await idle(client)
    exploded, unknown = tool_results(model.requests[-1])
    assert exploded["content"] == "Error: the tool exploded"
    assert unknown["content"] == "Error: no tool named 'no_such_tool' (the tools are: explode)"
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("complete", "Both failed.")
    assert [(s["tool"], s["status"], s["error"]) for s in stored["steps"]] == [
        ("test:explode", "failed", "the tool exploded"),
        ("no_such_tool", "failed", "no tool named 'no_such_tool' (the tools are: explode)")]


async def test_a_call_past_the_timeout_fails_and_the_answer_goes_on(fake_service, make_client):
    def plan(body):
        return calls(("hang", {})) if not tool_results(body) else say("It timed out.")

    model, client = await start_tool_model(fake_service, make_client, plan, TOOL_TIMEOUT_SECONDS=0.3)
    tools = add_test_tools(client)
    account = await register(client)
    chat = await tooled_chat(client, account, ["test:hang"])
    answer = (await post_message(client, account, chat["id"], "Wait"))["assistant_message"]
    await idle(client)
    assert tool_results(model.requests[-1])[0]["content"] == "Error: the tool did not answer within 0.3 s"
    assert tools.cancelled.is_set()
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("complete", "It timed out.")
    assert stored["steps"][0]["error"] == "the tool did not answer within 0.3 s"


async def test_cancel_stops_the_call_in_flight_and_ends_its_step(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client, lambda body: calls(("hang", {})))
    tools = add_test_tools(client)
    account = await register(client)
    chat = await tooled_chat(client, account, ["test:hang"])
    answer = (await post_message(client, account, chat["id"], "Hang"))["assistant_message"]
    await asyncio.wait_for(tools.running.wait(), 10)
    resp = await client.post(f"/api/messages/{answer['id']}/cancel", headers=account.headers)
    assert resp.status == 200
    await asyncio.wait_for(tools.cancelled.wait(), 10)
    await idle(client)
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "cancelled"
    [step] = stored["steps"]
    assert (step["status"], step["error"]) == ("failed", f"{STEP_CUT}: cancelled")
    assert len(model.requests) == 1


async def test_a_watcher_sees_each_step_start_and_end(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client, one_call_then_answer)
    account = await register(client)
    chat = await tooled_chat(client, account, ["builtin:search_chats"])
    ws = await open_ws(client, account, chat["id"])
    answer = (await post_message(client, account, chat["id"], "Search"))["assistant_message"]
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    frames = await read_to_end(ws)
    steps = [f["step"] for f in frames if f.get("type") == "tool_call"]
    late = [f.get("steps", []) for f in frames if f.get("type") == "stream_content"]
    seen = late[0] + steps
    # whenever the socket joined, each state of the step arrives once: running, then done
    assert [s["status"] for s in seen] in (["running", "done"], ["done"])
    assert {s["id"] for s in seen} == {seen[-1]["id"]} and seen[-1]["tool"] == "builtin:search_chats"
    assert all(f["message_id"] == answer["id"] for f in frames if f.get("type") == "tool_call")


async def test_a_socket_joining_after_the_call_gets_the_step_once(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client, one_call_then_answer)
    account = await register(client)
    chat = await tooled_chat(client, account, ["builtin:search_chats"])
    answer = (await post_message(client, account, chat["id"], "Search"))["assistant_message"]
    await idle(client)
    ws = await open_ws(client, account, chat["id"])
    frames = await follow(ws, answer["id"])
    [content] = [f for f in frames if f["type"] == "stream_content"]
    [step] = content["steps"]
    assert (step["tool"], step["status"]) == ("builtin:search_chats", "done")
    assert not [f for f in frames if f.get("type") == "tool_call"]
    assert frames[-1]["type"] == "complete"


async def test_a_socket_joining_mid_call_gets_the_running_step_then_its_end(fake_service, make_client):
    def plan(body):
        return calls(("hang", {})) if not tool_results(body) else say("Done.")

    model, client = await start_tool_model(fake_service, make_client, plan, TOOL_TIMEOUT_SECONDS=2)
    tools = add_test_tools(client)
    account = await register(client)
    chat = await tooled_chat(client, account, ["test:hang"])
    answer = (await post_message(client, account, chat["id"], "Hang a while"))["assistant_message"]
    await asyncio.wait_for(tools.running.wait(), 10)
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    first = await receive(ws)
    rest = await read_to_end(ws)
    assert first["type"] == "stream_content"
    [running] = first["steps"]
    assert running["status"] == "running"
    [ended] = [f["step"] for f in rest if f.get("type") == "tool_call"]
    assert (ended["id"], ended["status"]) == (running["id"], "failed")
    assert rest[-1]["type"] == "complete"


async def test_sse_carries_the_steps(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client, one_call_then_answer)
    account = await register(client)
    chat = await tooled_chat(client, account, ["builtin:search_chats"])
    answer = (await post_message(client, account, chat["id"], "Search"))["assistant_message"]
    await idle(client)
    resp = await client.get(f"/api/messages/{answer['id']}/stream", headers=account.headers)
    text = await resp.text()
    assert "event: content\n" in text
    content = json.loads(text.split("event: content\n", 1)[1].split("data: ", 1)[1].split("\n", 1)[0])
    [step] = content["steps"]
    assert step["status"] == "done"
    resumed = await client.get(f"/api/messages/{answer['id']}/stream",
                               headers={**account.headers, "Last-Event-ID": "3"})
    assert (await resumed.text()).count("event: tool_call\n") == 1


async def test_tools_of_an_unavailable_source_are_not_sent(fake_service, make_client):
    model, client = await start_tool_model(fake_service, make_client, lambda body: say("No tools."))
    tools = add_test_tools(client)
    account = await register(client)
    chat = await tooled_chat(client, account, ["test:echo", "builtin:read_file"])
    tools.available = lambda: False  # type: ignore[method-assign]
    await post_message(client, account, chat["id"], "Which tools?")
    await idle(client)
    assert [t["function"]["name"] for t in model.requests[-1]["tools"]] == ["read_file"]
    listed = {t["id"]: t["available"] for t in app_of(client)[TOOLBOX].listing()}
    assert (listed["test:echo"], listed["builtin:read_file"]) == (False, True)


async def test_a_rerun_after_a_crash_mid_call_ends_the_step_and_does_not_run_it_again(make_client):
    client = await make_client(start_workers=False)
    app = app_of(client)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "Crash mid-call"))["assistant_message"]
    await app[ANSWER_STATE].open(answer["id"], owner="a-process-that-died")
    step = {"id": "s1", "tool": "builtin:search_chats", "arguments": {"query": "x"}, "status": "running",
            "output": "", "error": None}
    await app[ANSWERS].add(answer["id"], chat["id"], Event.tool_step(step))
    await generate(app, answer["id"])
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["error"]) == ("failed", INTERRUPTED)
    assert stored["steps"] == [{**step, "status": "failed", "error": f"{STEP_CUT}: {INTERRUPTED}"}]


async def test_each_tools_calls_failures_and_time_are_counted(fake_service, make_client):
    def plan(body):
        if not tool_results(body):
            return calls(("echo", {"text": "x"}), ("echo", {"text": "y"}), ("explode", {}))
        return say("Counted.")

    model, client = await start_tool_model(fake_service, make_client, plan)
    add_test_tools(client)
    account = await register(client)
    chat = await tooled_chat(client, account, ["test:echo", "test:explode"])
    await post_message(client, account, chat["id"], "Count")
    await idle(client)
    text = await (await client.get("/metrics")).text()
    assert 'tool_calls_total{outcome="done",tool="test:echo"} 2.0' in text
    assert 'tool_calls_total{outcome="failed",tool="test:explode"} 1.0' in text
    assert 'tool_call_duration_seconds_count{tool="test:echo"} 2.0' in text


async def test_llmock_calls_a_chat_tool_and_answers_with_its_result(make_client):
    with LLMockServer() as mock:
        client = await make_client(OPENAI_BASE_URL=mock.base_url("openai"), OPENAI_API_KEY="test",
                                   OPENAI_MODEL="gpt-4o-mini")
        account = await register(client)
        chat = await tooled_chat(client, account, ["builtin:search_chats"])
        answer = (await post_message(client, account, chat["id"], "Search my chats for the garden plan"))[
            "assistant_message"]
        await idle(client)
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete" and stored["content"]
    [step] = stored["steps"]
    assert (step["tool"], step["status"]) == ("builtin:search_chats", "done")
    assert isinstance(step["arguments"].get("query"), str)
