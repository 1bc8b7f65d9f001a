"""The Responses API (/v1/responses, docs/openai.md), driven by the official
`openai` SDK against the in-process app and fake model servers."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import openai
import pytest
from aiohttp import web
from llmock.testing import LLMockServer
from support.accounts import register
from support.fake_ai_service import FakeAIService, callback_path
from support.fake_openai import FakeOpenAI, start_openai_service
from support.run_process import start_run_py
from support.served_app import db_of
from support.tool_models import calls, say, start_tool_model, tool_results

from chatserver.ai.builtin import LEAD

QUESTION = "Which plants grow well next to tomatoes?"
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added"]
CLOSING = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


async def answer_row(client, response_id: str) -> dict | None:
    """The stored answer once it is finished, or None when there is none."""
    answer_id = response_id.removeprefix("resp_")
    async with asyncio.timeout(10):
        while True:
            row = await db_of(client).fetchrow(
                "SELECT status, content, error, chat_id, parent_id FROM messages WHERE id = %s", (answer_id,))
            if row is None or row["status"] not in ("pending", "streaming"):
                return row
            await asyncio.sleep(0.02)


async def chat_count(client, account) -> int:
    resp = await client.get("/api/chats", headers=account.headers)
    return len((await resp.json())["items"])


def kinds(events) -> list[str]:
    return [e.type for e in events]


def streamed(events) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


# ---- create, non-streamed and streamed


async def test_a_response_answers_with_usage(client, sdk):
    api = await sdk(client)
    done = await api.responses.create(model="builtin", input=QUESTION)
    assert (done.object, done.status, done.model) == ("response", "completed", "builtin")
    assert done.id.startswith("resp_")
    assert done.output_text.startswith(LEAD)
    (item,) = done.output
    assert (item.type, item.role, item.status) == ("message", "assistant", "completed")
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens > 0
    assert (await answer_row(client, done.id))["content"] == done.output_text


async def test_a_streamed_response_sends_openais_events_in_order(fake_service, make_client, sdk):
    _, client = await start_openai_service(fake_service, make_client)
    api = await sdk(client)
    events = [e async for e in await api.responses.create(model="test-model", input=QUESTION, stream=True)]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert kinds(events) == TEXT_EVENTS + ["response.output_text.delta"] * len(deltas) + CLOSING + [
        "response.completed"]
    assert streamed(events) == "Hello!" == events[-1].response.output_text
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(set(numbers)) and numbers[0] == 0
    assert events[-1].response.usage.output_tokens > 0
    assert (await answer_row(client, events[-1].response.id))["content"] == "Hello!"


async def test_reasoning_comes_as_its_own_item_before_the_message(fake_service, make_client, sdk):
    service = FakeOpenAI(reasoning=("Think", "ing."))
    _, client = await start_openai_service(fake_service, make_client, service=service)
    api = await sdk(client)
    events = [e async for e in await api.responses.create(model="test-model", input=QUESTION, stream=True)]
    thought = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert thought == "Thinking."
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["reasoning", "message"]
    final = events[-1].response
    assert [i.type for i in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == "Thinking." and final.output_text == "Hello!"
    done = await api.responses.create(model="test-model", input=QUESTION)
    assert [i.type for i in done.output] == ["reasoning", "message"]


async def test_instructions_are_the_system_prompt_of_the_turn(fake_service, make_client, sdk):
    service, client = await start_openai_service(fake_service, make_client)
    api = await sdk(client)
    await api.responses.create(model="test-model", input=QUESTION, instructions="Answer in French.",
                               temperature=0.3, max_output_tokens=40)
    (sent,) = service.requests_about(QUESTION)
    assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert (sent["temperature"], sent["max_tokens"]) == (0.3, 40)


async def test_input_items_list_what_the_call_said(client, sdk):
    api = await sdk(client)
    done = await api.responses.create(model="builtin", input=[
        {"role": "user", "content": "About basil"},
        {"role": "assistant", "content": "Basil likes sun."},
        {"role": "user", "content": [{"type": "input_text", "text": QUESTION}]}])
    items = [i async for i in api.responses.input_items.list(done.id, order="asc")]
    assert [(i.role, i.content[0].text) for i in items] == [
        ("user", "About basil"), ("assistant", "Basil likes sun."), ("user", QUESTION)]
    newest = [i async for i in api.responses.input_items.list(done.id)]
    assert [i.id for i in newest] == [i.id for i in reversed(items)]


async def test_get_and_delete_a_response(client, sdk):
    api = await sdk(client)
    done = await api.responses.create(model="builtin", input=QUESTION)
    again = await api.responses.retrieve(done.id)
    assert (again.id, again.status, again.output_text) == (done.id, "completed", done.output_text)
    chat_id = (await answer_row(client, done.id))["chat_id"]
    await api.responses.delete(done.id)
    with pytest.raises(openai.NotFoundError):
        await api.responses.retrieve(done.id)
    assert await db_of(client).fetchval("SELECT count(*) FROM chats WHERE id = %s", (chat_id,)) == 0


async def test_a_response_is_a_chat_of_the_keys_user(client, sdk):
    account = await register(client)
    api = await sdk(client, account)
    done = await api.responses.create(model="builtin", input=QUESTION)
    chat_id = (await answer_row(client, done.id))["chat_id"]
    resp = await client.get(f"/api/chats/{chat_id}/messages", headers=account.headers)
    turns = [(m["role"], m["status"]) for m in (await resp.json())["items"]]
    assert turns == [("user", "complete"), ("assistant", "complete")]


async def test_llmock_model_server_answers_responses(make_client, sdk):
    with LLMockServer() as mock:
        client = await make_client(OPENAI_BASE_URL=mock.base_url("openai"), OPENAI_API_KEY="test",
                                   OPENAI_MODEL="gpt-4o-mini")
        api = await sdk(client)
        events = [e async for e in await api.responses.create(model="gpt-4o-mini", input=QUESTION, stream=True)]
        done = await api.responses.create(model="gpt-4o-mini", input="And basil?",
                                          previous_response_id=events[-1].response.id)
        whole = await events_of(api, done.id)
    assert events[-1].type == "response.completed" and streamed(events) == events[-1].response.output_text != ""
    assert done.status == "completed" and done.output_text == streamed(whole)
    middle = whole[len(whole) // 2].sequence_number
    assert_resumes_exactly(whole, await events_of(api, done.id, middle), middle)


# ---- conversations


async def test_previous_response_id_chains_turns_in_one_chat(fake_service, make_client, sdk):
    service, client = await start_openai_service(fake_service, make_client)
    account = await register(client)
    api = await sdk(client, account)
    first = await api.responses.create(model="test-model", input="First about basil")
    second = await api.responses.create(model="test-model", input="Second about parsley",
                                        previous_response_id=first.id)
    third = await api.responses.create(model="test-model", input="Third about mint",
                                       previous_response_id=second.id, instructions="Be brief.")
    assert third.previous_response_id == second.id
    (sent,) = service.requests_about("Third about mint")
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First about basil"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Second about parsley"}, {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Third about mint"}]
    rows = [await answer_row(client, r.id) for r in (first, second, third)]
    assert len({r["chat_id"] for r in rows}) == 1 and await chat_count(client, account) == 1


async def test_a_response_continues_one_that_ended_before_its_final_write_landed(fake_service, make_client, sdk):
    # Redis hears of an answer's end a moment before PostgreSQL stores it; a client that
    # continues at once must not be told the response is still in progress. The window is
    # held open here by a lock on the answer's row, released while the continuation waits.
    hold = asyncio.Event()
    _, client = await start_openai_service(fake_service, make_client, FakeOpenAI(hold=hold),
                                           STREAM_CHECKPOINT_SECONDS=3600)
    api = await sdk(client)
    first = await api.responses.create(model="test-model", input="First about basil", background=True)
    message_id = first.id.removeprefix("resp_")
    db = db_of(client)
    status = "SELECT status FROM messages WHERE id = %s"
    async with asyncio.timeout(30):
        while await db.fetchval(status, (message_id,)) != "streaming":
            await asyncio.sleep(0.05)
    async with db.transaction() as cur:
        await cur.execute("SELECT 1 FROM messages WHERE id = %s FOR UPDATE", (message_id,))
        hold.set()
        async with asyncio.timeout(30):
            while (await api.responses.retrieve(first.id)).status != "completed":
                await asyncio.sleep(0.05)
        assert await db.fetchval(status, (message_id,)) == "streaming"
        second = asyncio.create_task(api.responses.create(model="test-model", input="Second about parsley",
                                                          previous_response_id=first.id))
        await asyncio.sleep(0.5)
    assert (await second).previous_response_id == first.id


async def test_store_false_leaves_nothing_once_over(client, sdk):
    account = await register(client)
    api = await sdk(client, account)
    kept = await api.responses.create(model="builtin", input=QUESTION)
    gone = await api.responses.create(model="builtin", input="And basil?", store=False,
                                      previous_response_id=kept.id)
    assert gone.status == "completed"
    events = [e async for e in await api.responses.create(model="builtin", input=QUESTION, store=False,
                                                          stream=True)]
    assert events[-1].type == "response.completed"
    assert await answer_row(client, gone.id) is None
    async with asyncio.timeout(10):
        while await answer_row(client, events[-1].response.id) is not None:
            await asyncio.sleep(0.02)
    assert await chat_count(client, account) == 1
    with pytest.raises(openai.NotFoundError):
        await api.responses.retrieve(gone.id)
    assert (await api.responses.retrieve(kept.id)).status == "completed"


# ---- errors


async def test_bad_key_is_an_authentication_error(client, sdk):
    api = await sdk(client, key="cs-wrong")
    with pytest.raises(openai.AuthenticationError) as caught:
        await api.responses.create(model="builtin", input=QUESTION)
    assert caught.value.code == "invalid_api_key"


async def test_unknown_model_is_not_found(client, sdk):
    api = await sdk(client)
    with pytest.raises(openai.NotFoundError) as caught:
        await api.responses.create(model="gpt-9", input=QUESTION)
    assert caught.value.code == "model_not_found"


async def test_an_unknown_previous_response_is_not_found(client, sdk):
    api = await sdk(client)
    for unknown in ("resp_0123", "resp_" + "0" * 32, "nonsense"):
        with pytest.raises(openai.NotFoundError) as caught:
            await api.responses.create(model="builtin", input=QUESTION, previous_response_id=unknown)
        assert caught.value.code == "response_not_found"


async def test_another_users_response_is_not_found(client, sdk):
    done = await (await sdk(client)).responses.create(model="builtin", input=QUESTION)
    other = await sdk(client)
    with pytest.raises(openai.NotFoundError):
        await other.responses.retrieve(done.id)
    with pytest.raises(openai.NotFoundError):
        await other.responses.create(model="builtin", input=QUESTION, previous_response_id=done.id)


@pytest.mark.parametrize("body", [
    {"model": "builtin"},
    {"model": "builtin", "input": []},
    {"model": "builtin", "input": "   "},
    {"model": "builtin", "input": QUESTION, "temperature": 9},
    {"model": "builtin", "input": [{"role": "assistant", "content": "I end it"}]},
    {"model": "builtin", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
    {"model": "builtin", "input": QUESTION, "background": True, "store": False},
])
async def test_malformed_requests_are_bad_requests_in_openais_shape(client, body):
    account = await register(client)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json())["key"]
    resp = await client.post("/v1/responses", data=json.dumps(body),
                             headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"


async def test_not_json_is_a_bad_request(client, sdk):
    account = await register(client)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json())["key"]
    resp = await client.post("/v1/responses", data=b"{not json",
                             headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"


async def test_responses_count_under_the_message_rate_limit(make_client, sdk):
    client = await make_client(RATE_LIMIT_MESSAGES="1/60")
    api = await sdk(client)
    await api.responses.create(model="builtin", input=QUESTION)
    with pytest.raises(openai.RateLimitError) as caught:
        await api.responses.create(model="builtin", input=QUESTION)
    assert int(caught.value.response.headers["Retry-After"]) >= 1


# ---- the connection


async def test_a_foreground_stream_whose_client_leaves_is_cancelled(fake_service, make_client, sdk):
    hold = asyncio.Event()
    service, client = await start_openai_service(fake_service, make_client, service=FakeOpenAI(hold=hold))
    api = await sdk(client)
    stream = await api.responses.create(model="test-model", input=QUESTION, stream=True)
    async for event in stream:
        if event.type == "response.output_text.delta":
            break
    response_id = event.item_id.replace("msg_", "resp_")
    await stream.close()
    async with asyncio.timeout(10):
        await service.disconnected.wait()
    row = await answer_row(client, response_id)
    assert (row["status"], row["content"], row["error"]) == ("cancelled", "Hel", "the API client disconnected")


# ---- background responses and resuming


async def finished(api, response_id: str):
    async with asyncio.timeout(20):
        while True:
            got = await api.responses.retrieve(response_id)
            if got.status not in ("queued", "in_progress"):
                return got
            await asyncio.sleep(0.05)


async def events_of(api, response_id: str, after: int | None = None) -> list:
    extra = {} if after is None else {"starting_after": after}
    return [e async for e in await api.responses.retrieve(response_id, stream=True, **extra)]


def assert_resumes_exactly(whole: list, resumed: list, after: int) -> None:
    """`resumed` is `whole` after event `after`: the same events, and the
    deltas' text exactly from the character numbered after + 1."""
    def fixed(events):
        return [(e.type, e.sequence_number) for e in events if not e.type.endswith(".delta")]

    def text_after(events, kind):
        out = ""
        for e in events:
            if e.type == kind:
                first = e.sequence_number - len(e.delta) + 1
                out += e.delta[max(0, after + 1 - first):]
        return out

    assert fixed(resumed) == [f for f in fixed(whole) if f[1] > after]
    for kind in ("response.output_text.delta", "response.reasoning_text.delta"):
        assert "".join(e.delta for e in resumed if e.type == kind) == text_after(whole, kind)
    assert all(e.sequence_number > after for e in resumed)


async def test_background_answers_at_once_and_goes_on_without_a_client(client, sdk):
    api = await sdk(client)
    job = await api.responses.create(model="builtin", input=QUESTION, background=True)
    assert (job.status, job.background, job.output) == ("queued", True, [])
    done = await finished(api, job.id)
    assert done.status == "completed" and done.output_text.startswith(LEAD)


async def test_a_queued_response_survives_a_restart_and_resumes_from_another_process(make_client, sdk):
    stopped = await make_client(start_workers=False)
    account = await register(stopped)
    api = await sdk(stopped, account)
    job = await api.responses.create(model="builtin", input=QUESTION, background=True)
    assert job.status == "queued"
    restarted = await make_client()
    other = await sdk(restarted, key=api.api_key)
    done = await finished(other, job.id)
    assert done.status == "completed"
    whole = await events_of(api, job.id)
    assert streamed(whole) == done.output_text and whole[-1].type == "response.completed"
    for after in sorted({-1, 0, 1, 2, 3, 4, 5, 9, whole[-2].sequence_number, whole[-1].sequence_number,
                         *(e.sequence_number for e in whole)}):
        assert_resumes_exactly(whole, await events_of(other, job.id, after), after)


async def test_resuming_with_reasoning_is_exact_from_every_event(fake_service, make_client, sdk):
    service = FakeOpenAI(reasoning=("Think", "ing hard."), deltas=("Basil ", "and ", "marigolds."))
    _, client = await start_openai_service(fake_service, make_client, service=service)
    api = await sdk(client)
    live = [e async for e in await api.responses.create(model="test-model", input=QUESTION, stream=True,
                                                        background=True)]
    response_id = live[-1].response.id
    whole = await events_of(api, response_id)
    assert [(e.type, e.sequence_number) for e in whole if not e.type.endswith(".delta")] == [
        (e.type, e.sequence_number) for e in live if not e.type.endswith(".delta")]
    last = whole[-1].sequence_number
    for after in range(-1, last + 1):
        assert_resumes_exactly(whole, await events_of(api, response_id, after), after)


async def test_a_background_stream_resumes_after_a_disconnect_on_another_process(fake_service, make_client, sdk):
    hold = asyncio.Event()
    service, client = await start_openai_service(fake_service, make_client, service=FakeOpenAI(hold=hold))
    api = await sdk(client)
    other = await sdk(await make_client(start_workers=False), key=api.api_key)
    stream = await api.responses.create(model="test-model", input=QUESTION, stream=True, background=True)
    seen = []
    async for event in stream:
        seen.append(event)
        if event.type == "response.output_text.delta":
            break
    await stream.close()
    response_id = seen[0].response.id
    assert streamed(seen) == "Hel"
    hold.set()
    rest = await events_of(other, response_id, seen[-1].sequence_number)
    assert streamed(seen) + streamed(rest) == "Hello!"
    assert rest[-1].type == "response.completed" and rest[-1].response.output_text == "Hello!"
    assert not service.disconnected.is_set()


async def test_curl_follows_a_background_stream(client, sdk):
    account = await register(client)
    api = await sdk(client, account)
    job = await api.responses.create(model="builtin", input=QUESTION, background=True)
    curl = await asyncio.create_subprocess_exec(
        "curl", "-sN", str(client.make_url(f"/v1/responses/{job.id}?stream=true&starting_after=1")),
        "-H", f"Authorization: Bearer {api.api_key}", stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(curl.communicate(), 30)
    blocks = [b.split("\n") for b in out.decode().strip().split("\n\n")]
    assert curl.returncode == 0 and all(len(b) == 2 for b in blocks)
    events = [json.loads(data.removeprefix("data: ")) for _, data in blocks]
    assert [f"event: {e['type']}" for e in events] == [kind for kind, _ in blocks]
    assert events[0]["type"] == "response.output_item.added" and events[0]["sequence_number"] == 2
    assert events[-1]["type"] == "response.completed"
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta").startswith(LEAD)


async def test_cancel_stops_a_background_response(fake_service, make_client, sdk):
    hold = asyncio.Event()
    _, client = await start_openai_service(fake_service, make_client, service=FakeOpenAI(hold=hold))
    api = await sdk(client)
    job = await api.responses.create(model="test-model", input=QUESTION, background=True)
    async with asyncio.timeout(10):
        while (await api.responses.retrieve(job.id)).output_text != "Hel":
            await asyncio.sleep(0.02)
    cancelled = await api.responses.cancel(job.id)
    assert (cancelled.status, cancelled.output_text) == ("cancelled", "Hel")
    events = await events_of(api, job.id)
    assert events[-1].type == "response.failed" and events[-1].response.status == "cancelled"
    assert (await answer_row(client, job.id))["status"] == "cancelled"


async def test_only_background_responses_can_be_cancelled(client, sdk):
    api = await sdk(client)
    done = await api.responses.create(model="builtin", input=QUESTION)
    with pytest.raises(openai.BadRequestError):
        await api.responses.cancel(done.id)


@pytest.mark.timeout(120)
async def test_a_background_response_resumes_on_the_other_process_after_a_kill_of_the_first(
        tmp_path, servers, redis_prefix, fake_service):
    service = FakeAIService()
    service_url = str((await fake_service(service.app)).make_url("/generate"))
    a, a_url = await start_run_py(tmp_path, servers, redis_prefix, AI_SERVICE_URL=service_url)
    b, b_url = await start_run_py(tmp_path, servers, redis_prefix, AI_SERVICE_URL=service_url)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{a_url}/api/auth/register", json={
                    "email": f"resp-{redis_prefix[-8:]}@example.com", "password": "password123"}) as r:
                token = (await r.json())["access_token"]
            async with http.post(f"{a_url}/api/keys", json={"name": "k"},
                                 headers={"Authorization": f"Bearer {token}"}) as r:
                key = (await r.json())["key"]
            on_a = openai.AsyncOpenAI(base_url=f"{a_url}/v1", api_key=key, max_retries=0)
            on_b = openai.AsyncOpenAI(base_url=f"{b_url}/v1", api_key=key, max_retries=0)
            (model,) = [m.id async for m in on_a.models.list()]
            job = await on_a.responses.create(model=model, input=QUESTION, background=True)
            path = callback_path(await service.request_for(str(uuid.UUID(job.id.removeprefix("resp_")))))
            for seq, text in enumerate(["one", " two"]):
                async with http.post(f"{a_url}{path}", json={"type": "chunk", "content": text, "seq": seq}) as r:
                    assert r.status == 200
            seen = []
            stream = await on_a.responses.retrieve(job.id, stream=True)
            async for event in stream:
                seen.append(event)
                if streamed(seen) == "one two":
                    break
            a.kill()
            a.wait()
            async with http.post(f"{b_url}{path}", json={"type": "chunk", "content": " three", "seq": 2}) as r:
                assert r.status == 200
            async with http.post(f"{b_url}{path}", json={"type": "complete"}) as r:
                assert r.status == 200
            rest = await events_of(on_b, job.id, seen[-1].sequence_number)
            assert streamed(rest) == " three"
            assert rest[-1].type == "response.completed" and rest[-1].response.output_text == "one two three"
            await on_a.close()
            await on_b.close()
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


# ---- function tools

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


class CallingModel:
    """A model server that calls get_weather when offered tools, and answers
    in words once it has read a function's output."""

    def __init__(self):
        self.requests: list[dict] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if body.get("tools") and not body["messages"][-1]["content"].startswith("Output of function call"):
            deltas = [{"tool_calls": [{"index": 0, "id": "call_7", "type": "function",
                                       "function": {"name": "get_weather", "arguments": '{"city": '}}]},
                      {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}]
            finish = "tool_calls"
        else:
            deltas, finish = [{"content": "It is "}, {"content": "22 degrees."}], "stop"
        for delta in deltas:
            await resp.write(f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta}]})}\n\n".encode())
        last = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        await resp.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
        return resp


async def test_function_calls_round_trip(fake_service, make_client, sdk):
    model = CallingModel()
    _, client = await start_openai_service(fake_service, make_client, service=model)
    api = await sdk(client)
    events = [e async for e in await api.responses.create(
        model="test-model", input="Weather in Paris?", tools=[WEATHER], stream=True)]
    assert [e.type for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    (call,) = events[-1].response.output
    assert (call.type, call.name, call.arguments, call.call_id) == (
        "function_call", "get_weather", '{"city": "Paris"}', "call_7")
    assert model.requests[0]["tools"] == [{"type": "function", "function": {
        k: WEATHER[k] for k in ("name", "description", "parameters")}}]
    answer = await api.responses.create(
        model="test-model", previous_response_id=events[-1].response.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"celsius": 22}'}])
    assert answer.output_text == "It is 22 degrees."
    assert model.requests[1]["messages"][-1] == {
        "role": "user", "content": 'Output of function call call_7: {"celsius": 22}'}
    (item,) = [i async for i in api.responses.input_items.list(answer.id)]
    assert (item.type, item.call_id, item.output) == ("function_call_output", "call_7", '{"celsius": 22}')


async def test_function_calls_are_kept_and_resumed_exactly(fake_service, make_client, sdk):
    _, client = await start_openai_service(fake_service, make_client, service=CallingModel())
    api = await sdk(client)
    done = await api.responses.create(model="test-model", input="Weather in Paris?", tools=[WEATHER],
                                      tool_choice={"type": "function", "name": "get_weather"})
    assert [(i.type, i.arguments) for i in done.output] == [("function_call", '{"city": "Paris"}')]
    assert (await api.responses.retrieve(done.id)).output == done.output
    whole = await events_of(api, done.id)
    for after in range(-1, whole[-1].sequence_number + 1):
        resumed = await events_of(api, done.id, after)
        assert [(e.type, e.sequence_number) for e in resumed] == [
            (e.type, e.sequence_number) for e in whole if e.sequence_number > after]


async def test_a_response_in_a_chat_with_server_tools_runs_them_and_streams_the_answer(
        fake_service, make_client, sdk):
    def plan(body: dict) -> dict:
        if not body.get("tools"):
            return say("Noted.")
        if not tool_results(body):
            return calls(("search_chats", {"query": "zanzibar"}))
        return say("You went to Zanzibar.")

    model, client = await start_tool_model(fake_service, make_client, plan)
    account = await register(client)
    api = await sdk(client, account)
    first = await api.responses.create(model="test-model", input="My zanzibar itinerary")
    [chat] = (await (await client.get("/api/chats", headers=account.headers)).json())["items"]
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"tools": ["builtin:search_chats"]},
                              headers=account.headers)
    assert resp.status == 200
    events = [e async for e in await api.responses.create(
        model="test-model", previous_response_id=first.id, input="Where did I go?", stream=True)]
    assert streamed(events) == "You went to Zanzibar."
    assert events[-1].type == "response.completed"
    assert [t["function"]["name"] for t in model.requests[1]["tools"]] == ["search_chats"]
    [result] = tool_results(model.requests[2])
    assert json.loads(result["content"])[0]["chat_id"] == chat["id"]


async def test_only_function_tools_are_accepted(client, sdk):
    api = await sdk(client)
    with pytest.raises(openai.BadRequestError) as caught:
        await api.responses.create(model="builtin", input=QUESTION, tools=[{"type": "web_search"}])
    assert caught.value.body["param"] == "tools"


async def test_an_answer_cut_by_the_token_limit_is_incomplete(fake_service, make_client, sdk):
    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for event in ({"choices": [{"index": 0, "delta": {"content": "Basil, mint and"}}]},
                      {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}):
            await resp.write(f"data: {json.dumps(event)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    model = web.Application()
    model.router.add_post("/v1/chat/completions", cut)
    server = await fake_service(model)
    client = await make_client(OPENAI_BASE_URL=str(server.make_url("/v1")), OPENAI_MODEL="test-model")
    api = await sdk(client)
    events = [e async for e in await api.responses.create(model="test-model", input=QUESTION, stream=True,
                                                          max_output_tokens=3)]
    assert events[-1].type == "response.incomplete"
    final = events[-1].response
    assert (final.status, final.incomplete_details.reason, final.output_text) == (
        "incomplete", "max_output_tokens", "Basil, mint and")
    assert final.output[0].status == "incomplete" and final.usage.output_tokens > 0
    assert (await api.responses.retrieve(final.id)).status == "incomplete"


async def test_a_failed_answer_is_a_failed_response_saying_why(fake_service, make_client, sdk):
    _, client = await start_openai_service(fake_service, make_client, service=FakeOpenAI(statuses=(400,)))
    api = await sdk(client)
    events = [e async for e in await api.responses.create(model="test-model", input=QUESTION, stream=True)]
    assert [e.type for e in events] == ["response.created", "response.in_progress", "response.failed"]
    assert events[-1].response.status == "failed" and "HTTP 400" in events[-1].response.error.message
    done = await api.responses.create(model="test-model", input=QUESTION)
    assert (done.status, done.output, done.usage) == ("failed", [], None)
    assert "HTTP 400" in done.error.message


async def test_the_sdks_stream_helper_accumulates_the_response(fake_service, make_client, sdk):
    service = FakeOpenAI(reasoning=("Think", "ing."))
    _, client = await start_openai_service(fake_service, make_client, service=service)
    api = await sdk(client)
    async with api.responses.stream(model="test-model", input=QUESTION) as stream:
        texts = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(texts) == final.output_text == "Hello!"
    assert [i.type for i in final.output] == ["reasoning", "message"]
