"""Roles and administration: nobody is an administrator until the operator
says so; administrators list and search accounts, change their role, state
and quotas, and read everyone's usage; nobody else (and no API key) may."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import aiohttp
import pytest
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.message_tree import setup, turn
from support.messages import post_message
from support.paths import TESTS_DIR
from support.served_app import app_of, db_of
from support.ws_frames import subscribed

from chatserver.data import users
from chatserver.live.answers import ANSWERS
from chatserver.live.state import ANSWER_STATE
from chatserver.live.wire import Event


async def closed_with(ws, seconds: float = 10) -> int | None:
    """Read the socket until it closes (frames are skipped); its close code."""
    async with asyncio.timeout(seconds):
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.CLOSE:
                return message.data
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return ws.close_code


async def admin(client):
    account = await register(client)
    await users.set_role_by_email(db_of(client), account.email, "admin")
    return account


async def me(client, account) -> dict:
    resp = await client.get("/api/users/me", headers=account.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def patch(client, account, user_id, body):
    return await client.patch(f"/api/admin/users/{user_id}", json=body, headers=account.headers)


def run_user(servers, *args, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": servers["dsn"], "REDIS_URL": servers["redis_url"]}
    return subprocess.run([sys.executable, str(TESTS_DIR.parent / "run.py"), "user", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=TESTS_DIR.parent)


async def test_a_new_account_is_a_user(client, user):
    assert (await me(client, user))["role"] == "user"


async def test_run_py_makes_administrators(servers, client):
    email = f"boss-{uuid.uuid4().hex[:8]}@example.com"
    added = run_user(servers, "add", email, "--admin", stdin="long enough password\n")
    assert added.returncode == 0, added.stderr
    login = await client.post("/api/auth/login", json={"email": email, "password": "long enough password"})
    assert (await login.json())["user"]["role"] == "admin"

    later = await register(client)
    made = run_user(servers, "admin", later.email)
    assert made.returncode == 0 and made.stdout.strip() == f"{later.email} is an administrator"
    assert (await me(client, later))["role"] == "admin"
    missing = run_user(servers, "admin", "nobody-at-all@example.com")
    assert missing.returncode == 1 and "no account" in missing.stderr


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/admin/users"), ("PATCH", f"/api/admin/users/{uuid.uuid4()}"), ("GET", "/api/admin/usage"),
    ("GET", "/api/admin/keys"), ("DELETE", f"/api/admin/keys/{uuid.uuid4()}")])
async def test_admin_routes_are_403_to_users_and_to_an_administrators_api_key(client, method, path):
    someone = await register(client)
    resp = await client.request(method, path, json={}, headers=someone.headers)
    assert resp.status == 403
    assert_error(await resp.json(), "forbidden")

    boss = await admin(client)
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=boss.headers)).json())["key"]
    resp = await client.request(method, path, json={}, headers={"Authorization": f"Bearer {key}"})
    assert resp.status == 403
    assert_error(await resp.json(), "forbidden")


async def test_admins_search_and_page_through_accounts(client):
    boss = await admin(client)
    tag = uuid.uuid4().hex[:10]
    made = [await register(client, f"{tag}-{n}@example.com") for n in range(3)]
    seen, cursor = [], None
    while True:
        params = {"q": tag.upper(), "limit": "2", **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/api/admin/users", params=params, headers=boss.headers)
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [u["email"] for u in seen] == [a.email for a in made]
    first = seen[0]
    assert first["role"] == "user" and first["disabled"] is False and first["last_active_at"] is None
    assert first["quota"] == {"tokens_per_day": None, "messages_per_day": None}
    assert "password_hash" not in first


async def test_a_tampered_cursor_is_422(client):
    boss = await admin(client)
    resp = await client.get("/api/admin/users", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=boss.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "invalid_cursor")


async def test_admins_change_role_and_quota(client):
    boss, other = await admin(client), await register(client)
    resp = await patch(client, boss, other.id, {"role": "admin", "quota": {"messages_per_day": 5}})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["role"] == "admin" and body["quota"] == {"tokens_per_day": None, "messages_per_day": 5}
    assert (await me(client, other))["role"] == "admin"
    body = await (await patch(client, boss, other.id, {"quota": {"tokens_per_day": 1000}})).json()
    assert body["quota"] == {"tokens_per_day": 1000, "messages_per_day": 5}
    body = await (await patch(client, boss, other.id, {"quota": {"messages_per_day": None}})).json()
    assert body["quota"] == {"tokens_per_day": 1000, "messages_per_day": None}


async def test_taking_the_role_away_holds_at_once(client):
    boss, other = await admin(client), await admin(client)
    assert (await patch(client, boss, other.id, {"role": "user"})).status == 200
    resp = await client.get("/api/admin/users", headers=other.headers)
    assert resp.status == 403


@pytest.mark.parametrize("body", [{"role": "user"}, {"disabled": True}])
async def test_an_admin_cannot_lock_themselves_out(client, body):
    boss = await admin(client)
    resp = await patch(client, boss, boss.id, body)
    assert resp.status == 403
    assert_error(await resp.json(), "forbidden")
    assert (await me(client, boss))["role"] == "admin"


@pytest.mark.parametrize("body", [{"role": "root"}, {"disabled": "yes"}, {"quota": {"tokens_per_day": -1}},
                                  {"quota": {"messages_per_day": "5"}}, {"quota": {"bananas": 1}}])
async def test_bad_changes_are_422(client, user, body):
    boss = await admin(client)
    resp = await patch(client, boss, user.id, body)
    assert resp.status == 422
    assert_error(await resp.json())


async def test_an_unknown_account_is_404(client):
    boss = await admin(client)
    for user_id in (uuid.uuid4(), "not-an-id"):
        resp = await patch(client, boss, user_id, {"disabled": True})
        assert resp.status == 404
        assert_error(await resp.json(), "not_found")


async def test_disabling_an_account_closes_its_sockets_in_every_process(make_client):
    first, second = await make_client(), await make_client()
    boss, other = await admin(first), await register(first)
    chat = await (await first.post("/api/chats", json={"title": "t"}, headers=other.headers)).json()
    ws = await subscribed(second, other, chat["id"])
    resp = await patch(first, boss, other.id, {"disabled": True})
    assert resp.status == 200 and (await resp.json())["disabled"] is True
    assert await closed_with(ws) == 4401
    assert (await second.get("/api/users/me", headers=other.headers)).status == 401
    resp = await patch(first, boss, other.id, {"disabled": False})
    assert (await resp.json())["disabled"] is False
    assert (await second.get("/api/users/me", headers=other.headers)).status == 200


async def test_disabling_an_account_ends_its_streams_in_every_process(make_client):
    first, second = await make_client(start_workers=False), await make_client(start_workers=False)
    boss, other = await admin(first), await register(first)
    chat = await create_chat(first, other)
    answer = (await post_message(first, other, chat["id"], "q"))["assistant_message"]
    await app_of(second)[ANSWER_STATE].open(uuid.UUID(answer["id"]), "test")
    resp = await second.get(f"/api/messages/{answer['id']}/stream", headers=other.headers)
    assert resp.status == 200
    await app_of(second)[ANSWERS].add(uuid.UUID(answer["id"]), uuid.UUID(answer["chat_id"]), Event.chunk("Hel"))
    assert (await resp.content.readuntil(b"\n\n")).startswith(b"event: content")

    assert (await patch(first, boss, other.id, {"disabled": True})).status == 200
    rest = (await asyncio.wait_for(resp.content.read(), 10)).decode()
    assert "event: error" in rest and '"unauthorized"' in rest


async def test_usage_by_user_model_and_day_with_thumbs(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    posted = await turn(client, service, account, chat["id"], "q", "a")
    await turn(client, service, account, chat["id"], "q2", "a2")
    answer = posted["assistant_message"]
    await client.post(f"/api/messages/{answer['id']}/feedback", json={"rating": 1}, headers=account.headers)
    boss = await admin(client)

    async def report(by):
        resp = await client.get("/api/admin/usage", params={"by": by, "days": "7"}, headers=boss.headers)
        assert resp.status == 200, await resp.text()
        return {item["key"]: item for item in (await resp.json())["items"]}

    mine = (await report("user"))[account.id]
    assert mine["messages"] == 2 and mine["thumbs_up"] == 1 and mine["thumbs_down"] == 0
    assert {"prompt_tokens", "completion_tokens"} <= set(mine)
    model = (await get_message_model(client, account, answer["id"]))
    assert (await report("model"))[model]["thumbs_up"] >= 1
    days = await report("day")
    assert all(len(day) == 10 for day in days) and sum(d["messages"] for d in days.values()) >= 2

    users_page = await (await client.get("/api/admin/users", params={"q": account.email},
                                          headers=boss.headers)).json()
    assert users_page["items"][0]["last_active_at"] is not None


async def get_message_model(client, account, message_id) -> str:
    body = await (await client.get(f"/api/messages/{message_id}", headers=account.headers)).json()
    return body.get("model") or ""


@pytest.mark.parametrize("query", [{"by": "week"}, {"days": "0"}, {"days": "x"}])
async def test_bad_usage_queries_are_422(client, query):
    boss = await admin(client)
    resp = await client.get("/api/admin/usage", params=query, headers=boss.headers)
    assert resp.status == 422
    assert_error(await resp.json())


async def test_admins_list_anyones_keys_and_revoke_them_everywhere(make_client):
    first, second = await make_client(), await make_client()
    boss, other = await admin(first), await register(first)
    made = await (await first.post("/api/keys", json={"name": "laptop"}, headers=other.headers)).json()
    resp = await first.get("/api/admin/keys", params={"user_id": other.id}, headers=boss.headers)
    assert resp.status == 200, await resp.text()
    (listed,) = (await resp.json())["items"]
    assert listed["id"] == made["id"] and listed["user_id"] == other.id and listed["name"] == "laptop"
    assert listed["user_email"] == other.email
    assert "key" not in listed

    key_headers = {"Authorization": f"Bearer {made['key']}"}
    assert (await second.get("/api/chats", headers=key_headers)).status == 200
    assert (await first.delete(f"/api/admin/keys/{made['id']}", headers=boss.headers)).status == 204
    assert (await second.get("/api/chats", headers=key_headers)).status == 401
    again = await first.delete(f"/api/admin/keys/{made['id']}", headers=boss.headers)
    assert again.status == 404
    assert_error(await again.json(), "not_found")
