"""Daily quotas: the server's defaults (QUOTA_TOKENS_PER_DAY,
QUOTA_MESSAGES_PER_DAY) or a user's own, counted across processes; a post
past one is 429 until the UTC day ends (OpenAI's insufficient_quota on /v1);
users see what they used and have left."""

from __future__ import annotations

import asyncio
import datetime as dt

import openai
import pytest
from llmock.testing import LLMockServer
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.served_app import db_of


async def post(client, account, chat_id, content="Hello there"):
    return await client.post(f"/api/chats/{chat_id}/messages", json={"content": content}, headers=account.headers)


def seconds_to_midnight() -> float:
    now = dt.datetime.now(dt.UTC)
    return (dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), dt.UTC) - now).total_seconds()


async def quota_of(client, account) -> dict:
    return (await (await client.get("/api/users/me", headers=account.headers)).json())["quota"]


async def test_the_message_quota_holds_across_two_processes(make_client):
    first, second = await make_client(QUOTA_MESSAGES_PER_DAY=2), await make_client(QUOTA_MESSAGES_PER_DAY=2)
    account = await register(first)
    chat = await create_chat(first, account)
    assert (await post(first, account, chat["id"])).status == 201
    assert (await post(second, account, chat["id"])).status == 201
    for client in (first, second):
        resp = await post(client, account, chat["id"])
        assert resp.status == 429
        assert_error(await resp.json(), "quota_exceeded")
        retry_after = int(resp.headers["Retry-After"])
        assert 0 < retry_after <= seconds_to_midnight() + 2
    quota = await quota_of(second, account)
    assert quota["messages"] == {"limit": 2, "used": 2, "left": 0}
    assert quota["tokens"]["limit"] is None and quota["tokens"]["left"] is None
    assert dt.datetime.fromisoformat(quota["resets_at"]).time() == dt.time()


async def test_without_quotas_posts_are_counted_and_nothing_is_left_out(client):
    account = await register(client)
    chat = await create_chat(client, account)
    assert (await post(client, account, chat["id"])).status == 201
    quota = await quota_of(client, account)
    assert quota["messages"] == {"limit": None, "used": 1, "left": None}


async def test_a_users_own_quota_overrides_the_default(make_client):
    client = await make_client(QUOTA_MESSAGES_PER_DAY=100)
    account = await register(client)
    await db_of(client).execute("UPDATE users SET quota_messages_per_day = 1 WHERE id = %s", (account.id,))
    chat = await create_chat(client, account)
    assert (await post(client, account, chat["id"])).status == 201
    resp = await post(client, account, chat["id"])
    assert resp.status == 429
    assert_error(await resp.json(), "quota_exceeded")
    await db_of(client).execute("UPDATE users SET quota_messages_per_day = 0 WHERE id = %s", (account.id,))
    assert (await post(client, account, chat["id"])).status == 201


@pytest.mark.parametrize("through", ["v1", "rest"])
async def test_a_users_own_quota_holds_for_their_api_keys(make_client, through):
    client = await make_client(QUOTA_MESSAGES_PER_DAY=100)
    account = await register(client)
    await db_of(client).execute("UPDATE users SET quota_messages_per_day = 1 WHERE id = %s", (account.id,))
    chat = await create_chat(client, account)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=account.headers)).json())["key"]
    path, body = {"v1": ("/v1/chat/completions",
                         {"model": "builtin", "messages": [{"role": "user", "content": "Hello there"}]}),
                  "rest": (f"/api/chats/{chat['id']}/messages", {"content": "Hello there"})}[through]
    first, second = [await client.post(path, json=body, headers={"Authorization": f"Bearer {key}"}) for _ in "12"]
    assert first.status in (200, 201)
    assert second.status == 429


async def test_regenerating_takes_a_message_too(make_client):
    client = await make_client(QUOTA_MESSAGES_PER_DAY=1)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await (await post(client, account, chat["id"])).json())["assistant_message"]
    resp = await client.post(f"/api/messages/{answer['id']}/regenerate", headers=account.headers)
    assert resp.status == 429
    assert_error(await resp.json(), "quota_exceeded")


async def until_tokens_counted(client, account) -> dict:
    async with asyncio.timeout(30):
        while (quota := await quota_of(client, account))["tokens"]["used"] == 0:
            await asyncio.sleep(0.05)
    return quota


async def test_the_token_quota_counts_answers_when_they_end_and_then_refuses(make_client):
    with LLMockServer() as mock:
        settings = {"OPENAI_BASE_URL": mock.base_url("openai"), "OPENAI_API_KEY": "test",
                    "OPENAI_MODEL": "gpt-4o-mini", "QUOTA_TOKENS_PER_DAY": 1}
        first, second = await make_client(**settings), await make_client(**settings)
        account = await register(first)
        chat = await create_chat(first, account)
        # within the quota when posted: the answer runs to its end and counts, past the quota
        assert (await post(first, account, chat["id"])).status == 201
        quota = await until_tokens_counted(second, account)
        assert quota["tokens"]["used"] > 1 and quota["tokens"]["left"] == 0
        resp = await post(second, account, chat["id"])
    assert resp.status == 429
    body = await resp.json()
    assert_error(body, "quota_exceeded")
    assert "token" in body["error"]


@pytest.mark.parametrize("call", ["chat", "responses"])
async def test_v1_past_the_quota_is_openais_insufficient_quota(make_client, call):
    client = await make_client(QUOTA_MESSAGES_PER_DAY=1)
    account = await register(client)
    key = (await (await client.post("/api/keys", json={"name": "sdk"}, headers=account.headers)).json())["key"]
    api = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=key, max_retries=0)
    question = [{"role": "user", "content": "Which plants grow well next to tomatoes?"}]

    async def ask():
        if call == "chat":
            return await api.chat.completions.create(model="builtin", messages=question)
        return await api.responses.create(model="builtin", input="Which plants grow well next to tomatoes?")

    try:
        await ask()
        with pytest.raises(openai.RateLimitError) as caught:
            await ask()
    finally:
        await api.close()
    error = caught.value
    assert error.status_code == 429 and error.code == "insufficient_quota"
    assert error.body["type"] == "insufficient_quota"
    assert int(error.response.headers["Retry-After"]) > 0

