"""Chats (docs/rest.md, "Chats", "Search"): CRUD, pagination, ownership, search."""

import uuid

import pytest
from support.accounts import create_chat
from support.error_shape import assert_error
from support.served_app import db_of

CHAT_KEYS = {"id", "title", "created_at", "updated_at", "shown_leaf", "model", "system_prompt", "temperature",
             "max_tokens", "folder_id", "pinned", "archived", "knowledge", "tools"}


async def test_create_chat_with_title(client, user):
    resp = await client.post("/api/chats", json={"title": "  Trip plans  "}, headers=user.headers)
    assert resp.status == 201
    body = await resp.json()
    assert set(body) == CHAT_KEYS
    assert body["title"] == "Trip plans"


async def test_create_chat_without_title_gets_a_default(client, user):
    resp = await client.post("/api/chats", json={}, headers=user.headers)
    assert resp.status == 201
    assert (await resp.json())["title"] == "New chat"


@pytest.mark.parametrize("body", [{"title": 5}, {"title": ""}, {"title": "x" * 201}, {"title": None, "x": 1}])
async def test_create_chat_rejects_bad_titles(client, user, body):
    resp = await client.post("/api/chats", json=body, headers=user.headers)
    if body.get("title") is None:
        assert resp.status == 201
        return
    assert resp.status == 422
    assert_error(await resp.json(), "validation_error")


async def test_create_chat_needs_a_token(client):
    resp = await client.post("/api/chats", json={})
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")


async def test_read_chat(client, user, chat):
    resp = await client.get(f"/api/chats/{chat['id']}", headers=user.headers)
    assert resp.status == 200
    assert await resp.json() == chat


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
async def test_another_users_chat_is_404(client, chat, other_user, method):
    resp = await getattr(client, method)(f"/api/chats/{chat['id']}", json={"title": "mine"},
                                         headers=other_user.headers)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


@pytest.mark.parametrize("chat_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
async def test_missing_or_malformed_chat_id_is_404(client, user, chat_id):
    resp = await client.get(f"/api/chats/{chat_id}", headers=user.headers)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


async def test_rename_chat(client, user, chat):
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"title": "Renamed"}, headers=user.headers)
    assert resp.status == 200
    assert (await resp.json())["title"] == "Renamed"
    again = await client.get(f"/api/chats/{chat['id']}", headers=user.headers)
    assert (await again.json())["title"] == "Renamed"


@pytest.mark.parametrize("body", [{}, {"title": ""}, {"title": None}, {"title": ["a"]}, {"title": "y" * 201}])
async def test_rename_rejects_invalid_titles_and_keeps_the_old_one(client, user, chat, body):
    resp = await client.patch(f"/api/chats/{chat['id']}", json=body, headers=user.headers)
    assert resp.status == 422
    again = await client.get(f"/api/chats/{chat['id']}", headers=user.headers)
    assert (await again.json())["title"] == chat["title"]


async def test_delete_chat_removes_it_and_its_messages(client, user, chat):
    await client.post(f"/api/chats/{chat['id']}/messages", json={"content": "bye"}, headers=user.headers)
    resp = await client.delete(f"/api/chats/{chat['id']}", headers=user.headers)
    assert resp.status == 204
    assert (await client.get(f"/api/chats/{chat['id']}", headers=user.headers)).status == 404
    left = await db_of(client).fetchval("SELECT count(*) FROM messages WHERE chat_id = %s", (chat["id"],))
    assert left == 0


async def test_list_is_most_recently_active_first(client, user):
    first = await create_chat(client, user, "first")
    second = await create_chat(client, user, "second")
    await client.post(f"/api/chats/{first['id']}/messages", json={"content": "bump"}, headers=user.headers)
    resp = await client.get("/api/chats", headers=user.headers)
    body = await resp.json()
    assert [c["id"] for c in body["items"]] == [first["id"], second["id"]]
    assert body["next_cursor"] is None


async def test_list_walks_every_chat_once_with_the_cursor(client, user):
    created = [(await create_chat(client, user, f"chat {i}"))["id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        query = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        body = await (await client.get("/api/chats", params=query, headers=user.headers)).json()
        assert len(body["items"]) <= 3
        seen += [c["id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == created[::-1]


async def test_list_shows_only_the_users_own_chats(client, user, other_user):
    await create_chat(client, other_user, "theirs")
    body = await (await client.get("/api/chats", headers=user.headers)).json()
    assert body["items"] == []


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"},
                                   {"cursor": "garbage"}, {"cursor": "WyJhIiwiYiJd"}])
async def test_list_rejects_bad_limit_and_cursor(client, user, query):
    resp = await client.get("/api/chats", params=query, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json())


async def test_search_finds_the_users_messages_with_a_snippet(client, user, chat):
    await client.post(f"/api/chats/{chat['id']}/messages",
                      json={"content": "The giraffes at the zoo were eating acacia leaves"}, headers=user.headers)
    resp = await client.get("/api/search", params={"q": "giraffe"}, headers=user.headers)
    assert resp.status == 200
    (hit,) = (await resp.json())["items"]
    assert hit["chat_id"] == chat["id"]
    assert "giraffes" in hit["snippet"]
    assert set(hit) == {"chat_id", "message_id", "snippet", "created_at"}


async def test_search_never_returns_another_users_messages(client, user, other_user):
    theirs = await create_chat(client, other_user)
    await client.post(f"/api/chats/{theirs['id']}/messages", json={"content": "secret pineapple plans"},
                      headers=other_user.headers)
    body = await (await client.get("/api/search", params={"q": "pineapple"}, headers=user.headers)).json()
    assert body["items"] == []


@pytest.mark.parametrize("query", [{}, {"q": ""}, {"q": "   "}, {"q": "a", "limit": "0"}, {"q": "x" * 501}])
async def test_search_rejects_missing_or_bad_query(client, user, query):
    resp = await client.get("/api/search", params=query, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "validation_error")


async def test_search_survives_query_syntax_characters(client, user):
    resp = await client.get("/api/search", params={"q": "a & | ! ( ' \" :* <->"}, headers=user.headers)
    assert resp.status == 200


async def test_search_with_a_nul_character_is_422(client, user):
    resp = await client.get("/api/search", params={"q": "a\x00b"}, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "invalid_input")


async def test_login_with_a_nul_character_is_422(client):
    resp = await client.post("/api/auth/login", data={"username": "a\x00@b.co", "password": "password1"})
    assert resp.status == 422


SETTINGS = {"model": "builtin", "system_prompt": "Answer in French.", "temperature": 0.2, "max_tokens": 64}


async def test_a_new_chat_has_default_settings(client, user, chat):
    assert {k: chat[k] for k in SETTINGS} == dict.fromkeys(SETTINGS)


async def test_create_chat_with_settings(client, user):
    resp = await client.post("/api/chats", json={"title": "t", **SETTINGS}, headers=user.headers)
    assert resp.status == 201
    body = await resp.json()
    assert {k: body[k] for k in SETTINGS} == SETTINGS


async def test_patch_changes_settings_without_a_title_and_null_resets_one(client, user, chat):
    resp = await client.patch(f"/api/chats/{chat['id']}", json=SETTINGS, headers=user.headers)
    assert resp.status == 200
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"temperature": None}, headers=user.headers)
    body = await resp.json()
    assert body["title"] == chat["title"]
    assert {k: body[k] for k in SETTINGS} == {**SETTINGS, "temperature": None}
    again = await (await client.get(f"/api/chats/{chat['id']}", headers=user.headers)).json()
    assert again == body


@pytest.mark.parametrize("body", [
    {"temperature": 2.5}, {"temperature": -0.1}, {"temperature": "hot"}, {"max_tokens": 0},
    {"max_tokens": 1.5}, {"system_prompt": "x" * 20_001}, {"model": ""}, {"model": 3},
])
async def test_invalid_settings_are_422_and_change_nothing(client, user, chat, body):
    for resp in (await client.patch(f"/api/chats/{chat['id']}", json=body, headers=user.headers),
                 await client.post("/api/chats", json=body, headers=user.headers)):
        assert resp.status == 422
        assert_error(await resp.json(), "validation_error")
    again = await (await client.get(f"/api/chats/{chat['id']}", headers=user.headers)).json()
    assert again == chat


async def test_an_integer_temperature_is_accepted(client, user, chat):
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"temperature": 1}, headers=user.headers)
    assert resp.status == 200
    assert (await resp.json())["temperature"] == 1.0
