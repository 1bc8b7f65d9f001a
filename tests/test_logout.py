"""Logout: the token it is called with stops working at once in every
process, until it would have expired, and what it holds open closes."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import jwt
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.messages import post_message
from support.served_app import app_of
from support.ws_frames import subscribed

from chatserver import appkeys
from chatserver.live.answers import ANSWERS
from chatserver.live.fanout import listener_client_name
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


async def login(client, account) -> dict:
    resp = await client.post("/api/auth/login", json={"email": account.email, "password": account.password})
    assert resp.status == 200
    return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


async def test_a_logged_out_token_is_refused_in_every_process_and_other_tokens_still_work(make_client):
    first, second = await make_client(), await make_client()
    account = await register(first)
    other_session = await login(first, account)
    resp = await first.post("/api/auth/logout", headers=account.headers)
    assert resp.status == 204
    for client in (first, second):
        resp = await client.get("/api/users/me", headers=account.headers)
        assert resp.status == 401
        assert_error(await resp.json(), "unauthorized")
    assert (await second.get("/api/users/me", headers=other_session)).status == 200
    again = await second.post("/api/auth/logout", headers=account.headers)
    assert again.status == 401


async def test_logout_closes_the_tokens_sockets_in_every_process(make_client):
    first, second = await make_client(), await make_client()
    account = await register(first)
    chat = await create_chat(first, account)
    ws = await subscribed(second, account, chat["id"])
    assert (await first.post("/api/auth/logout", headers=account.headers)).status == 204
    assert await closed_with(ws) == 4401


async def test_the_deny_list_lasts_as_long_as_the_token_would_have(client, user):
    claims = jwt.decode(user.token, options={"verify_signature": False})
    assert (await client.post("/api/auth/logout", headers=user.headers)).status == 204
    app = app_of(client)
    ttl = await app[appkeys.REDIS].ttl(app[appkeys.KEYS].revoked_token(claims["jti"]))
    lifetime = claims["exp"] - claims["iat"]
    assert lifetime - 60 < ttl <= lifetime


async def test_every_token_has_its_own_id(client, user):
    again = await login(client, user)
    ids = {jwt.decode(t, options={"verify_signature": False})["jti"]
           for t in (user.token, again["Authorization"].removeprefix("Bearer "))}
    assert len(ids) == 2


async def test_an_api_key_cannot_log_out(client, user):
    key = (await (await client.post("/api/keys", json={"name": "k"}, headers=user.headers)).json())["key"]
    resp = await client.post("/api/auth/logout", headers={"Authorization": f"Bearer {key}"})
    assert resp.status == 403
    assert_error(await resp.json(), "forbidden")
    assert (await client.get("/api/users/me", headers=user.headers)).status == 200


async def test_logout_without_a_token_is_401(client):
    resp = await client.post("/api/auth/logout")
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")


async def test_logout_ends_the_tokens_stream_in_every_process(make_client):
    client = await make_client(start_workers=False)
    other_process = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "q"))["assistant_message"]
    await app_of(client)[ANSWER_STATE].open(uuid.UUID(answer["id"]), "test")
    resp = await client.get(f"/api/messages/{answer['id']}/stream", headers=account.headers)
    assert resp.status == 200
    await app_of(client)[ANSWERS].add(uuid.UUID(answer["id"]), uuid.UUID(answer["chat_id"]), Event.chunk("Hel"))
    assert (await resp.content.readuntil(b"\n\n")).startswith(b"event: content")

    assert (await other_process.post("/api/auth/logout", headers=account.headers)).status == 204
    rest = (await asyncio.wait_for(resp.content.read(), 10)).decode()
    assert "event: error" in rest and '"unauthorized"' in rest


async def test_a_logout_missed_while_the_revocation_listener_was_away_still_closes_the_socket(client, user):
    chat = await create_chat(client, user)
    ws = await subscribed(client, user, chat["id"])
    app = app_of(client)
    claims = jwt.decode(user.token, options={"verify_signature": False})
    # denied behind the servers' backs: no message on the channel
    await app[appkeys.REDIS].set(app[appkeys.KEYS].revoked_token(claims["jti"]), b"1", ex=600)
    # the server drops the listener's subscription; subscribed again, it reads the deny-list
    redis = app[appkeys.REDIS]
    (killed,) = [c["id"] for c in await redis.client_list(_type="pubsub")
                 if c["name"] == listener_client_name(app[appkeys.KEYS])]
    await redis.client_kill_filter(_id=killed)
    assert await closed_with(ws) == 4401
