"""The Responses API (/v1/responses, docs/openai.md), driven by the official
`openai` SDK against the in-process app and fake model servers."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from ai_support import FakeOpenAI, start_openai_service
from chatserver.ai.builtin import LEAD
from conftest import db_of, register

QUESTION = "Which plants grow well next to tomatoes?"
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added"]
CLOSING = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


@pytest.fixture
async def sdk():
    """sdk(client, account=None, key=None): the SDK pointed at a test server,
    with `key` or a new API key of `account`; closed after the test."""
    made = []

    async def make(client, account=None, key=None) -> openai.AsyncOpenAI:
        if key is None:
            account = account or await register(client)
            resp = await client.post("/api/keys", json={"name": "sdk"}, headers=account.headers)
            key = (await resp.json())["key"]
        api = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=key, max_retries=0)
        made.append(api)
        return api

    yield make
    for api in made:
        await api.close()


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
