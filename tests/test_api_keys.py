"""API keys (docs/openai.md): made by a
user, shown once, stored hashed, working wherever a token does."""

from __future__ import annotations

import asyncio

import aiohttp
from support.accounts import register
from support.error_shape import assert_error
from support.run_process import start_run_py
from support.served_app import db_of


async def make_key(client, account, name: str = "laptop") -> dict:
    resp = await client.post("/api/keys", json={"name": name}, headers=account.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


async def test_created_key_is_shown_once_with_its_prefix(client, user):
    made = await make_key(client, user)
    assert set(made) == {"id", "name", "key", "prefix", "created_at"}
    assert made["key"].startswith("cs-") and len(made["key"]) > 40
    assert made["key"].startswith(made["prefix"]) and len(made["prefix"]) < len(made["key"])
    listed = await (await client.get("/api/keys", headers=user.headers)).json()
    assert listed["items"] == [{"id": made["id"], "name": "laptop", "prefix": made["prefix"],
                                "created_at": made["created_at"], "last_used_at": None}]


async def test_key_is_stored_only_as_a_hash(client, user):
    made = await make_key(client, user)
    row = await db_of(client).fetchrow("SELECT * FROM api_keys WHERE id = %s", (made["id"],))
    assert made["key"].encode() not in bytes(row["key_hash"])
    assert made["key"] not in {str(v) for v in row.values()}


async def test_key_works_like_a_token(client, user):
    made = await make_key(client, user)
    resp = await client.get("/api/users/me", headers=bearer(made["key"]))
    assert resp.status == 200
    assert (await resp.json())["id"] == user.id


async def test_key_works_on_the_websocket(client, user, chat):
    made = await make_key(client, user)
    ws = await client.ws_connect(f"/ws/chat/{chat['id']}?token={made['key']}")
    await ws.send_json({"type": "ping", "timestamp": 1})
    assert (await ws.receive_json(timeout=30))["type"] == "pong"
    await ws.close()


async def test_use_sets_last_used_at(client, user):
    made = await make_key(client, user)
    await client.get("/api/users/me", headers=bearer(made["key"]))
    (item,) = (await (await client.get("/api/keys", headers=user.headers)).json())["items"]
    assert item["last_used_at"] is not None


async def test_last_used_at_is_written_at_most_once_a_minute(client, user):
    made = await make_key(client, user)
    await client.get("/api/users/me", headers=bearer(made["key"]))
    first = await db_of(client).fetchval("SELECT last_used_at FROM api_keys WHERE id = %s", (made["id"],))
    for _ in range(3):
        await client.get("/api/users/me", headers=bearer(made["key"]))
    assert await db_of(client).fetchval("SELECT last_used_at FROM api_keys WHERE id = %s", (made["id"],)) == first


async def test_unknown_key_is_401(client):
    resp = await client.get("/api/users/me", headers=bearer("cs-not-a-key-of-anyone"))
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")


async def test_deleted_key_stops_working_at_once(client, user):
    made = await make_key(client, user)
    assert (await client.get("/api/users/me", headers=bearer(made["key"]))).status == 200
    resp = await client.delete(f"/api/keys/{made['id']}", headers=user.headers)
    assert resp.status == 204
    assert (await client.get("/api/users/me", headers=bearer(made["key"]))).status == 401
    assert (await (await client.get("/api/keys", headers=user.headers)).json())["items"] == []


async def test_deleted_key_fails_at_once_on_another_server_process(client, user, settings, servers, redis_prefix,
                                                                  tmp_path):
    proc, other = await start_run_py(tmp_path, servers, redis_prefix, JWT_SECRET=settings.JWT_SECRET)
    try:
        made = await make_key(client, user)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{other}/api/users/me", headers=bearer(made["key"])) as resp:
                assert resp.status == 200
            assert (await client.delete(f"/api/keys/{made['id']}", headers=user.headers)).status == 204
            async with http.get(f"{other}/api/users/me", headers=bearer(made["key"])) as resp:
                assert resp.status == 401
    finally:
        proc.terminate()
        proc.wait(30)


async def test_another_users_key_cannot_be_listed_or_deleted(client, user, other_user):
    made = await make_key(client, user)
    assert (await (await client.get("/api/keys", headers=other_user.headers)).json())["items"] == []
    resp = await client.delete(f"/api/keys/{made['id']}", headers=other_user.headers)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")
    assert (await client.get("/api/users/me", headers=bearer(made["key"]))).status == 200


async def test_malformed_key_id_is_404(client, user):
    resp = await client.delete("/api/keys/not-an-id", headers=user.headers)
    assert resp.status == 404


async def test_key_name_is_required(client, user):
    for body in ({}, {"name": "  "}, {"name": 5}, {"name": "x" * 101}):
        resp = await client.post("/api/keys", json=body, headers=user.headers)
        assert resp.status == 422, body
        assert_error(await resp.json(), "validation_error")


async def test_keys_need_a_login(client):
    assert (await client.get("/api/keys")).status == 401


async def test_a_key_can_neither_make_nor_list_nor_delete_keys(client, user):
    made = await make_key(client, user)
    for method, path, body in (("POST", "/api/keys", {"name": "replacement"}), ("GET", "/api/keys", None),
                               ("DELETE", f"/api/keys/{made['id']}", None)):
        resp = await client.request(method, path, json=body, headers=bearer(made["key"]))
        assert resp.status == 403, (method, await resp.text())
        assert_error(await resp.json(), "forbidden")
    listed = await (await client.get("/api/keys", headers=user.headers)).json()
    assert [k["id"] for k in listed["items"]] == [made["id"]]


async def test_a_revoked_or_unknown_key_on_the_key_routes_is_still_401(client, user):
    resp = await client.get("/api/keys", headers=bearer("cs-unknown"))
    assert resp.status == 401


async def test_keys_per_user_are_capped_by_max_api_keys_per_user(make_client):
    client = await make_client(MAX_API_KEYS_PER_USER=3)
    account = await register(client)
    made = [await make_key(client, account, f"k{i}") for i in range(3)]
    resp = await client.post("/api/keys", json={"name": "one too many"}, headers=account.headers)
    assert resp.status == 409, await resp.text()
    body = await resp.json()
    assert_error(body, "too_many_keys")
    assert "3" in body["error"]
    assert (await client.delete(f"/api/keys/{made[0]['id']}", headers=account.headers)).status == 204
    await make_key(client, account, "in its place")
    other = await register(client)
    await make_key(client, other)


async def test_concurrent_creates_never_pass_the_cap(make_client):
    client = await make_client(MAX_API_KEYS_PER_USER=5)
    account = await register(client)
    answers = await asyncio.gather(*(client.post("/api/keys", json={"name": f"k{i}"}, headers=account.headers)
                                     for i in range(20)))
    assert sorted(r.status for r in answers) == [201] * 5 + [409] * 15
    listed = await (await client.get("/api/keys", params={"limit": "100"}, headers=account.headers)).json()
    assert len(listed["items"]) == 5


async def test_the_key_list_is_paginated_newest_first(client, user):
    made = [await make_key(client, user, f"k{i}") for i in range(5)]
    seen, cursor = [], None
    pages = 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await (await client.get("/api/keys", params=params, headers=user.headers)).json()
        assert len(page["items"]) <= 2
        seen += [k["id"] for k in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [k["id"] for k in reversed(made)]
    resp = await client.get("/api/keys", params={"cursor": "WyJ4Il0"}, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "invalid_cursor")
