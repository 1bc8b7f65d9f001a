"""Messages (docs/rest.md, "Messages"): posting, listing, reading, ownership, limits."""

import uuid

import pytest
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.served_app import app_of, db_of

from chatserver import appkeys

MESSAGE_KEYS = {"id", "chat_id", "role", "content", "status", "sources", "file_ids", "error",
                "created_at", "completed_at", "parent_id", "siblings", "model", "finish_reason", "usage", "reasoning",
                "feedback", "steps"}


async def post(client, account, chat_id, content="Hello there", **extra):
    return await client.post(f"/api/chats/{chat_id}/messages", json={"content": content, **extra},
                             headers=account.headers)


async def test_posting_writes_user_and_pending_assistant_messages(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    resp = await post(client, account, chat["id"], "What is the capital of France?")
    assert resp.status == 201
    body = await resp.json()
    user_message, answer = body["user_message"], body["assistant_message"]
    assert set(user_message) == set(answer) == MESSAGE_KEYS
    assert user_message["role"] == "user" and user_message["status"] == "complete"
    assert user_message["content"] == "What is the capital of France?"
    assert user_message["completed_at"] is not None
    assert answer["role"] == "assistant" and answer["status"] == "pending"
    assert answer["content"] == "" and answer["completed_at"] is None and answer["sources"] == []


async def test_posting_queues_one_generation_job(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await (await post(client, account, chat["id"])).json())["assistant_message"]
    app = app_of(client)
    jobs = await app[appkeys.REDIS].lrange(app[appkeys.KEYS].queue("ai"), 0, -1)
    assert len(jobs) == 1
    assert answer["id"] in jobs[0] and "ai.generate" in jobs[0]


async def test_posting_to_a_chat_with_a_pending_answer_is_allowed(client, user, chat):
    assert (await post(client, user, chat["id"], "one")).status == 201
    assert (await post(client, user, chat["id"], "two")).status == 201


async def test_content_of_100000_characters_is_accepted(client, user, chat):
    resp = await post(client, user, chat["id"], "x" * 100_000)
    assert resp.status == 201


@pytest.mark.parametrize("body", [
    {"content": "x" * 100_001},
    {"content": ""},
    {"content": "   \n "},
    {"content": 12},
    {},
    {"content": "hi", "file_ids": "abc"},
    {"content": "hi", "file_ids": ["not-a-uuid"]},
    {"content": "hi", "file_ids": [str(uuid.uuid4()) for _ in range(21)]},
])
async def test_posting_rejects_invalid_messages_and_stores_nothing(client, user, chat, body):
    resp = await client.post(f"/api/chats/{chat['id']}/messages", json=body, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json())
    count = await db_of(client).fetchval("SELECT count(*) FROM messages WHERE chat_id = %s", (chat["id"],))
    assert count == 0


async def test_posting_with_unknown_file_ids_is_422(client, user, chat):
    resp = await post(client, user, chat["id"], file_ids=[str(uuid.uuid4())])
    assert resp.status == 422
    assert_error(await resp.json(), "unknown_files")


async def test_posting_with_another_users_file_is_422(client, user, other_user, chat):
    file_id = await db_of(client).fetchval(
        """INSERT INTO files (user_id, name, storage_name, size, sha256, content_type, status, text_content)
           VALUES (%s, 'x.txt', %s, 1, 'h', 'text/plain', 'ready', 'x') RETURNING id""",
        (other_user.id, uuid.uuid4().hex))
    resp = await post(client, user, chat["id"], file_ids=[str(file_id)])
    assert resp.status == 422


async def test_posting_with_own_file_records_its_id(client, user, chat):
    file_id = await db_of(client).fetchval(
        """INSERT INTO files (user_id, name, storage_name, size, sha256, content_type, status, text_content)
           VALUES (%s, 'x.txt', %s, 1, 'h', 'text/plain', 'ready', 'x') RETURNING id""",
        (user.id, uuid.uuid4().hex))
    resp = await post(client, user, chat["id"], file_ids=[str(file_id), str(file_id)])
    assert resp.status == 201
    assert (await resp.json())["user_message"]["file_ids"] == [str(file_id)]


async def test_posting_to_another_users_chat_is_404_and_stores_nothing(client, chat, other_user):
    resp = await post(client, other_user, chat["id"])
    assert resp.status == 404
    count = await db_of(client).fetchval("SELECT count(*) FROM messages WHERE chat_id = %s", (chat["id"],))
    assert count == 0


async def test_malformed_json_body_is_422(client, user, chat):
    resp = await client.post(f"/api/chats/{chat['id']}/messages", data=b'{"content": ',
                             headers=user.headers | {"Content-Type": "application/json"})
    assert resp.status == 422
    assert_error(await resp.json(), "invalid_json")


async def test_body_over_the_request_limit_is_413(make_client):
    client = await make_client(MAX_REQUEST_BODY=1000)
    account = await register(client)
    chat = await create_chat(client, account)
    resp = await post(client, account, chat["id"], "x" * 5000)
    assert resp.status == 413
    assert_error(await resp.json(), "payload_too_large")


async def test_list_is_oldest_first_and_the_cursor_walks_back(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    for i in range(5):
        await post(client, account, chat["id"], f"message {i}")
    url = f"/api/chats/{chat['id']}/messages"
    page1 = await (await client.get(url, params={"limit": "4"}, headers=account.headers)).json()
    assert [m["role"] for m in page1["items"]] == ["user", "assistant", "user", "assistant"]
    assert page1["items"][0]["content"] == "message 3"
    page2 = await (await client.get(url, params={"limit": "4", "cursor": page1["next_cursor"]},
                                    headers=account.headers)).json()
    assert page2["items"][0]["content"] == "message 1"
    page3 = await (await client.get(url, params={"limit": "4", "cursor": page2["next_cursor"]},
                                    headers=account.headers)).json()
    assert [m["content"] for m in page3["items"]] == ["message 0", ""]
    assert page3["next_cursor"] is None


async def test_list_of_another_users_chat_is_404(client, chat, other_user):
    resp = await client.get(f"/api/chats/{chat['id']}/messages", headers=other_user.headers)
    assert resp.status == 404


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "101"}, {"cursor": "bm90LWEtbnVtYmVy"},
                                   {"cursor": "!!!"}])
async def test_list_rejects_bad_limit_and_cursor(client, user, chat, query):
    resp = await client.get(f"/api/chats/{chat['id']}/messages", params=query, headers=user.headers)
    assert resp.status == 422


async def test_read_message(client, user, chat):
    posted = await (await post(client, user, chat["id"], "read me")).json()
    resp = await client.get(f"/api/messages/{posted['user_message']['id']}", headers=user.headers)
    assert resp.status == 200
    assert (await resp.json())["content"] == "read me"


@pytest.mark.parametrize("message_id", [None, str(uuid.uuid4()), "nope"])
async def test_another_users_or_missing_message_is_404(client, user, chat, other_user, message_id):
    if message_id is None:
        message_id = (await (await post(client, user, chat["id"])).json())["user_message"]["id"]
    resp = await client.get(f"/api/messages/{message_id}", headers=other_user.headers)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


@pytest.mark.parametrize("raw", [b'{"content": "nul \\u0000 here"}', b'{"content": "lone \\ud800 surrogate"}'])
async def test_text_postgres_cannot_store_is_422_not_500(client, user, chat, raw):
    resp = await client.post(f"/api/chats/{chat['id']}/messages", data=raw,
                             headers=user.headers | {"Content-Type": "application/json"})
    assert resp.status == 422
    assert_error(await resp.json(), "invalid_input")


async def test_emoji_and_non_latin_text_round_trip(client, user, chat):
    text = "Привет 👋 — 你好 \u200f"
    posted = await (await post(client, user, chat["id"], text)).json()
    got = await (await client.get(f"/api/messages/{posted['user_message']['id']}", headers=user.headers)).json()
    assert got["content"] == text
