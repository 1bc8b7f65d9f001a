"""Posting and reading messages through the REST API, and waiting until the
jobs they queued have run."""

from __future__ import annotations

from chatserver import appkeys
from support.served_app import app_of


async def post_message(client, account, chat_id: str, content: str = "Hello there", **extra) -> dict:
    resp = await client.post(f"/api/chats/{chat_id}/messages", json={"content": content, **extra},
                             headers=account.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def get_message(client, account, message_id: str) -> dict:
    resp = await client.get(f"/api/messages/{message_id}", headers=account.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def idle(client) -> None:
    await app_of(client)[appkeys.QUEUE].wait_idle()
