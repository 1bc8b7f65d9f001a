"""A chat's message tree through the REST API: a client whose AI is the fake
callback service, answered turns, the shown branch, edits and branch switches."""

from __future__ import annotations

from support.accounts import create_chat, register
from support.fake_ai_service import callback_path, start_callback_service
from support.messages import idle, post_message


async def setup(fake_service, make_client):
    service, client = await start_callback_service(fake_service, make_client)
    account = await register(client)
    chat = await create_chat(client, account)
    return service, client, account, chat


async def answer(client, service, message_id: str, text: str) -> None:
    path = callback_path(await service.request_for(message_id))
    await idle(client)
    resp = await client.post(path, json={"type": "complete", "content": text})
    assert resp.status == 200, await resp.text()


async def turn(client, service, account, chat_id, question, reply) -> dict:
    posted = await post_message(client, account, chat_id, question)
    await answer(client, service, posted["assistant_message"]["id"], reply)
    return posted


async def shown(client, account, chat_id, **query) -> list[dict]:
    resp = await client.get(f"/api/chats/{chat_id}/messages", params=query, headers=account.headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]


async def edit(client, account, message_id, content) -> dict:
    resp = await client.post(f"/api/messages/{message_id}/edit", json={"content": content}, headers=account.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def switch(client, account, chat_id, message_id):
    return await client.post(f"/api/chats/{chat_id}/branch", json={"message_id": message_id},
                             headers=account.headers)
