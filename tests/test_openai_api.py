"""The OpenAI-compatible /v1 API (docs/openai.md), driven by the official
`openai` Python SDK against every backend."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from aiohttp import web
from llmock.testing import LLMockServer
from support.accounts import register
from support.fake_ai_service import callback_path
from support.fake_openai import FakeOpenAI, start_openai_service
from support.served_app import db_of

from chatserver import appkeys
from chatserver.ai.builtin import LEAD
from chatserver.data import users

QUESTION = [{"role": "user", "content": "Which plants grow well next to tomatoes?"}]


async def stream_text(stream) -> tuple[str, list]:
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


async def chat_titles(client, account) -> list[str]:
    resp = await client.get("/api/chats", headers=account.headers)
    return [c["title"] for c in (await resp.json())["items"]]


async def answer_row(client, completion_id: str) -> dict | None:
    """The stored answer once it is finished (PostgreSQL learns of the end
    just after the followers do), or None when there is none."""
    answer_id = completion_id.removeprefix("chatcmpl-")
    async with asyncio.timeout(30):
        while True:
            row = await db_of(client).fetchrow(
                "SELECT status, content, error, chat_id FROM messages WHERE id = %s", (answer_id,))
            if row is None or row["status"] not in ("pending", "streaming"):
                return row
            await asyncio.sleep(0.02)


# ---- models


async def test_models_lists_the_servers_model(client, sdk):
    api = await sdk(client)
    models = [m async for m in api.models.list()]
    assert [(m.id, m.object, m.owned_by) for m in models] == [("builtin", "model", "builtin")]


async def test_models_of_the_openai_backend_name_its_model(fake_service, make_client, sdk):
    _, client = await start_openai_service(fake_service, make_client)
    api = await sdk(client)
    assert [m.id async for m in api.models.list()] == ["test-model"]


# ---- completions against each backend


async def test_builtin_answers_a_completion(client, sdk):
    api = await sdk(client)
    done = await api.chat.completions.create(model="builtin", messages=QUESTION)
    assert done.object == "chat.completion"
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].message.content.startswith(LEAD)
    assert done.choices[0].finish_reason == "stop"
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens > 0
    row = await answer_row(client, done.id)
    assert (row["status"], row["content"]) == ("complete", done.choices[0].message.content)


async def test_builtin_streams_a_completion(client, sdk):
    api = await sdk(client)
    text, chunks = await stream_text(await api.chat.completions.create(model="builtin", messages=QUESTION,
                                                                       stream=True))
    assert text.startswith(LEAD)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (await answer_row(client, chunks[0].id))["content"] == text


async def test_a_builtin_answer_names_its_passages_inline_and_points_at_no_sources(client, sdk):
    """/v1 carries no sources, so the answer must not refer to any shown elsewhere."""
    api = await sdk(client)
    talk = [{"role": "user", "content": "What do tomatoes like?"},
            {"role": "assistant", "content": "Basil grows well next to tomatoes."},
            *QUESTION]
    done = await api.chat.completions.create(model="builtin", messages=talk)
    text = done.choices[0].message.content
    assert text.endswith("Basil grows well next to tomatoes.")
    assert "source" not in text.lower() and "below" not in text


async def test_openai_compatible_backend_answers_streamed_and_not(fake_service, make_client, sdk):
    service, client = await start_openai_service(fake_service, make_client)
    api = await sdk(client)
    done = await api.chat.completions.create(model="test-model", messages=QUESTION)
    assert done.choices[0].message.content == "Hello!"
    assert done.model == "test-model"
    text, _ = await stream_text(await api.chat.completions.create(model="test-model", messages=QUESTION,
                                                                  stream=True))
    assert text == "Hello!"
    assert len(service.requests_about(QUESTION[0]["content"])) == 2


async def test_llmock_model_server_answers_through_the_openai_backend(make_client, sdk):
    with LLMockServer() as mock:
        client = await make_client(OPENAI_BASE_URL=mock.base_url("openai"), OPENAI_API_KEY="test",
                                   OPENAI_MODEL="gpt-4o-mini")
        api = await sdk(client)
        text, chunks = await stream_text(await api.chat.completions.create(
            model="gpt-4o-mini", messages=QUESTION, stream=True))
        done = await api.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert text and chunks[-1].choices[0].finish_reason == "stop"
    assert (await answer_row(client, chunks[0].id))["content"] == text
    assert done.choices[0].message.content == (await answer_row(client, done.id))["content"] != ""


class AnsweringService:
    """An AI service that answers every request through its callback URL."""

    def __init__(self, pieces=("Call", "back", "!")):
        self.pieces = pieces
        self.client = None
        self.requests: list[dict] = []
        self.tasks: set[asyncio.Task] = set()
        self.app = web.Application()
        self.app.router.add_post("/generate", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        task = asyncio.create_task(self.answer(callback_path(body)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({"accepted": True}, status=202)

    async def answer(self, path: str) -> None:
        events = [{"type": "chunk", "content": p, "seq": i} for i, p in enumerate(self.pieces)]
        await self.client.post(path, json=[*events, {"type": "complete", "seq": len(events)}])


async def test_callback_service_answers_streamed_and_not(fake_service, make_client, sdk):
    service = AnsweringService()
    server = await fake_service(service.app)
    client = await make_client(AI_SERVICE_URL=str(server.make_url("/generate")), AI_SERVICE_API_KEY="k")
    service.client = client
    api = await sdk(client)
    # the same models as GET /api/models: for the callback service, the model ids it is told
    (model,) = [m.id async for m in api.models.list()]
    assert model == client.app[appkeys.SETTINGS].OPENAI_MODEL
    done = await api.chat.completions.create(model=model, messages=QUESTION)
    assert done.choices[0].message.content == "Callback!"
    text, _ = await stream_text(await api.chat.completions.create(model=model, messages=QUESTION,
                                                                  stream=True))
    assert text == "Callback!"


# ---- what a call becomes


async def test_usage_comes_in_a_last_chunk_when_asked(client, sdk):
    api = await sdk(client)
    text, chunks = await stream_text(await api.chat.completions.create(
        model="builtin", messages=QUESTION, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


async def test_no_usage_chunk_unless_asked(client, sdk):
    api = await sdk(client)
    _, chunks = await stream_text(await api.chat.completions.create(model="builtin", messages=QUESTION,
                                                                    stream=True))
    assert all(c.usage is None and c.choices for c in chunks)


async def test_call_is_kept_as_a_chat_with_its_turns(fake_service, make_client, sdk):
    service, client = await start_openai_service(fake_service, make_client)
    account = await register(client)
    api = await sdk(client, account)
    done = await api.chat.completions.create(model="test-model", messages=[
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "First question about basil"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": [{"type": "text", "text": "And parsley?"}]},
    ], temperature=0.2, max_tokens=50, user="end-user-7", seed=3,
       extra_body={"unknown_field": {"x": 1}})
    assert await chat_titles(client, account) == ["First question about basil"]
    chat_id = (await answer_row(client, done.id))["chat_id"]
    resp = await client.get(f"/api/chats/{chat_id}/messages", headers=account.headers)
    turns = [(m["role"], m["content"], m["status"]) for m in (await resp.json())["items"]]
    assert turns == [("user", "First question about basil", "complete"), ("assistant", "First answer", "complete"),
                     ("user", "And parsley?", "complete"), ("assistant", "Hello!", "complete")]
    chat = await (await client.get(f"/api/chats/{chat_id}", headers=account.headers)).json()
    assert (chat["model"], chat["system_prompt"], chat["temperature"], chat["max_tokens"]) == (
        "test-model", "Answer briefly.", 0.2, 50)
    (sent,) = service.requests_about("And parsley?")
    assert [m for m in sent["messages"] if m["role"] != "system"] == [
        {"role": "user", "content": "First question about basil"},
        {"role": "assistant", "content": "First answer"},
        {"role": "user", "content": "And parsley?"}]


async def test_store_false_leaves_no_chat(client, sdk):
    account = await register(client)
    api = await sdk(client, account)
    done = await api.chat.completions.create(model="builtin", messages=QUESTION, store=False)
    assert done.choices[0].message.content.startswith(LEAD)
    _, chunks = await stream_text(await api.chat.completions.create(model="builtin", messages=QUESTION,
                                                                    stream=True, extra_body={"store": False}))
    assert await chat_titles(client, account) == []
    assert await answer_row(client, done.id) is None and await answer_row(client, chunks[0].id) is None


async def test_stop_sequence_cuts_the_answer(fake_service, make_client, sdk):
    _, client = await start_openai_service(fake_service, make_client, service=FakeOpenAI(["One. ", "Two. ", "Three."]))
    api = await sdk(client)
    done = await api.chat.completions.create(model="test-model", messages=QUESTION, stop=["Two"])
    assert (done.choices[0].message.content, done.choices[0].finish_reason) == ("One. ", "stop")
    text, _ = await stream_text(await api.chat.completions.create(model="test-model", messages=QUESTION,
                                                                  stop="wo.", stream=True))
    assert text == "One. T"


async def test_stop_and_user_reach_the_model_server(fake_service, make_client, sdk):
    service, client = await start_openai_service(fake_service, make_client)
    api = await sdk(client)
    await api.chat.completions.create(model="test-model", messages=QUESTION, stop=["Two", "Three"], user="u-42")
    (sent,) = service.requests_about(QUESTION[-1]["content"])
    assert (sent["stop"], sent["user"]) == (["Two", "Three"], "u-42")


async def test_without_stop_and_user_the_model_server_gets_neither(fake_service, make_client, sdk):
    service, client = await start_openai_service(fake_service, make_client)
    await (await sdk(client)).chat.completions.create(model="test-model", messages=QUESTION)
    (sent,) = service.requests_about(QUESTION[-1]["content"])
    assert "stop" not in sent and "user" not in sent


# ---- errors


async def test_bad_key_is_an_authentication_error(client, sdk):
    api = await sdk(client, key="cs-wrong")
    with pytest.raises(openai.AuthenticationError) as caught:
        await api.chat.completions.create(model="builtin", messages=QUESTION)
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        await api.models.list()


async def test_a_disabled_accounts_key_is_refused_as_such_and_a_deleted_key_as_revoked(client, sdk):
    account = await register(client)
    made = await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json()
    api = await sdk(client, key=made["key"])
    await users.set_disabled(db_of(client), account.email, True)
    with pytest.raises(openai.AuthenticationError) as disabled:
        await api.chat.completions.create(model="builtin", messages=QUESTION, stream=True)
    await users.set_disabled(db_of(client), account.email, False)
    assert (await client.delete(f"/api/keys/{made['id']}", headers=account.headers)).status == 204
    with pytest.raises(openai.AuthenticationError) as deleted:
        await api.chat.completions.create(model="builtin", messages=QUESTION, stream=True)
    for caught in (disabled, deleted):
        assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    assert "disabled" in disabled.value.body["message"]
    assert "revoked" in deleted.value.body["message"]


async def test_unknown_model_is_not_found(client, sdk):
    api = await sdk(client)
    with pytest.raises(openai.NotFoundError) as caught:
        await api.chat.completions.create(model="gpt-9", messages=QUESTION)
    assert caught.value.code == "model_not_found"
    assert caught.value.body["type"] == "invalid_request_error" and "gpt-9" in caught.value.body["message"]


@pytest.mark.parametrize("messages", [
    [],
    [{"role": "assistant", "content": "I end the conversation"}],
    [{"role": "user", "content": "   "}],
    [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}],
    [{"role": "tool", "content": "42", "tool_call_id": "t"}, {"role": "user", "content": "hi"}],
    [{"role": "wizard", "content": "hi"}],
])
async def test_bad_messages_are_a_bad_request(client, messages, sdk):
    api = await sdk(client)
    with pytest.raises(openai.BadRequestError) as caught:
        await api.chat.completions.create(model="builtin", messages=messages)
    assert set(caught.value.body) == {"message", "type", "param", "code"}
    assert caught.value.body["type"] == "invalid_request_error"


async def test_malformed_body_is_a_bad_request_in_openais_shape(client):
    account = await register(client)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json())["key"]
    for raw in (b"{not json", b"[]", json.dumps({"model": "builtin"}).encode(),
                json.dumps({"model": "builtin", "messages": QUESTION, "temperature": 7}).encode()):
        resp = await client.post("/v1/chat/completions", data=raw,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert resp.status == 400, raw
        body = await resp.json()
        assert set(body) == {"error"} and body["error"]["type"] == "invalid_request_error"


async def test_calls_count_under_the_message_rate_limit(make_client, sdk):
    client = await make_client(RATE_LIMIT_MESSAGES="2/60")
    api = await sdk(client)
    for _ in range(2):
        await api.chat.completions.create(model="builtin", messages=QUESTION)
    with pytest.raises(openai.RateLimitError) as caught:
        await api.chat.completions.create(model="builtin", messages=QUESTION, stream=True)
    assert int(caught.value.response.headers["Retry-After"]) >= 1
    assert caught.value.body["type"] == "rate_limit_error"


async def test_a_failed_answer_ends_the_stream_with_an_error_chunk(fake_service, make_client, sdk):
    _, client = await start_openai_service(fake_service, make_client, service=FakeOpenAI(statuses=(400,)))
    api = await sdk(client)
    stream = await api.chat.completions.create(model="test-model", messages=QUESTION, stream=True)
    with pytest.raises(openai.APIError) as caught:
        await stream_text(stream)
    assert "HTTP 400" in str(caught.value)
    with pytest.raises(openai.InternalServerError):
        await api.chat.completions.create(model="test-model", messages=QUESTION)


async def test_a_deleted_key_fails_at_once_on_a_second_server(make_client, client, sdk):
    second = await make_client()
    account = await register(client)
    made = await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json()
    api = await sdk(second, key=made["key"])
    assert [m.id async for m in api.models.list()] == ["builtin"]
    assert (await client.delete(f"/api/keys/{made['id']}", headers=account.headers)).status == 204
    with pytest.raises(openai.AuthenticationError):
        await api.models.list()


# ---- the connection


async def test_disconnect_mid_stream_cancels_the_generation_upstream(fake_service, make_client, sdk):
    hold = asyncio.Event()
    service, client = await start_openai_service(fake_service, make_client, service=FakeOpenAI(hold=hold))
    api = await sdk(client)
    stream = await api.chat.completions.create(model="test-model", messages=QUESTION, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    answer_id = chunk.id
    await stream.close()
    async with asyncio.timeout(30):
        await service.disconnected.wait()
    row = await answer_row(client, answer_id)
    assert (row["content"], row["error"]) == ("Hel", "the API client disconnected")


async def test_curl_sees_sse_lines_ending_with_done(client):
    account = await register(client)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json())["key"]
    body = json.dumps({"model": "builtin", "stream": True, "stream_options": {"include_usage": True},
                       "messages": QUESTION})
    curl = await asyncio.create_subprocess_exec(
        "curl", "-sN", str(client.make_url("/v1/chat/completions")), "-H", f"Authorization: Bearer {key}",
        "-H", "Content-Type: application/json", "-d", body, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(curl.communicate(), 30)
    lines = [line for line in out.decode().split("\n") if line]
    assert curl.returncode == 0
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    usage = json.loads(lines[-2].removeprefix("data: "))
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0
    assert json.loads(lines[0].removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"


async def test_deleting_the_api_key_ends_its_v1_stream_in_every_process(make_client):
    client = await make_client(start_workers=False)  # the answer never comes: the stream waits for it
    other_process = await make_client(start_workers=False)
    account = await register(client)
    made = await (await client.post("/api/keys", json={"name": "sdk"}, headers=account.headers)).json()
    resp = await client.post("/v1/chat/completions", json={"model": "builtin", "messages": QUESTION, "stream": True},
                             headers={"Authorization": f"Bearer {made['key']}"})
    assert resp.status == 200
    first = json.loads((await resp.content.readuntil(b"\n\n")).removeprefix(b"data: "))
    assert first["choices"][0]["delta"]["role"] == "assistant"

    assert (await other_process.delete(f"/api/keys/{made['id']}", headers=account.headers)).status == 204
    rest = (await asyncio.wait_for(resp.content.read(), 10)).decode().strip()
    error = json.loads(rest.removeprefix("data: "))["error"]
    assert error["code"] == "invalid_api_key" and "deleted" in error["message"]
async def post_completion(client, key: str, raw: bytes, content_type: str = "application/json"):
    return await client.post("/v1/chat/completions", data=raw,
                             headers={"Authorization": f"Bearer {key}", "Content-Type": content_type})


async def openai_error(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


async def api_key(client) -> str:
    account = await register(client)
    return (await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json())["key"]


async def test_json_nested_past_64_levels_is_a_bad_request_in_openais_shape(client):
    key = await api_key(client)
    for depth in (65, 1000, 100_000):
        raw = ('{"model":"builtin","messages":[{"role":"user","content":"hi","x":'
               + "[" * depth + "]" * depth + "}]}").encode()
        error = await openai_error(await post_completion(client, key, raw), 400)
        assert "deeper than 64 levels" in error["message"] and error["type"] == "invalid_request_error"


@pytest.mark.parametrize("field", [{"stream": "yes"}, {"stream": 1}, {"temperature": False},
                                   {"temperature": "1"}, {"store": "no"}, {"max_tokens": "5"}])
async def test_values_of_the_wrong_json_type_are_a_bad_request_not_coerced(client, field):
    key = await api_key(client)
    raw = json.dumps({"model": "builtin", "messages": QUESTION, **field}).encode()
    error = await openai_error(await post_completion(client, key, raw), 400)
    assert error["param"] == next(iter(field))


async def test_a_body_naming_a_charset_other_than_utf8_is_a_bad_request(client):
    key = await api_key(client)
    raw = json.dumps({"model": "builtin", "messages": QUESTION})
    for charset, data in (("klingon", raw.encode()), ("utf-16", raw.encode("utf-16"))):
        resp = await post_completion(client, key, data, f"application/json; charset={charset}")
        error = await openai_error(resp, 400)
        assert error["code"] == "invalid_input" and "UTF-8" in error["message"]
    resp = await post_completion(client, key, raw.encode(), "application/json; charset=UTF-8")
    assert resp.status == 200, await resp.text()


async def test_a_body_that_is_not_utf8_is_a_bad_request(client):
    key = await api_key(client)
    raw = json.dumps({"model": "builtin", "messages": QUESTION}).encode("utf-16")
    error = await openai_error(await post_completion(client, key, raw), 400)
    assert error["code"] == "invalid_json"


async def test_unknown_v1_paths_and_wrong_methods_answer_in_openais_shape(client):
    key = await api_key(client)
    headers = {"Authorization": f"Bearer {key}"}
    error = await openai_error(await client.get("/v1/unknown", headers=headers), 404)
    assert error["type"] == "invalid_request_error"
    await openai_error(await client.post("/v1/embeddings", json={}), 404)
    resp = await client.get("/v1/chat/completions", headers=headers)
    await openai_error(resp, 405)
    assert "POST" in resp.headers["Allow"]
