"""The callback endpoint (API.md "AI service integration"): tokens, seq, answers."""

import asyncio

from ai_support import (FakeAIService, callback_path, follow, get_message, idle, open_ws, post_message,
                        start_callback_service, streamed_text)
from conftest import assert_error, create_chat, register


async def started(fake_service, make_client, **settings):
    service, client = await start_callback_service(fake_service, make_client, **settings)
    account = await register(client)
    chat = await create_chat(client, account)
    posted = await post_message(client, account, chat["id"], "Say hello")
    body = await service.next_request()
    await idle(client)
    return service, client, account, chat, posted["assistant_message"], body


async def test_service_receives_message_history_files_and_signed_callback_url(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    assert service.headers[0]["Authorization"] == "Bearer service-key"
    assert body["message"] == "Say hello"
    assert body["conversation_history"] == []
    assert body["message_id"] == answer["id"] and body["chat_id"] == chat["id"]
    assert body["files"] == []
    assert f"/api/ai/callback/{answer['id']}?token=" in body["callback_url"]
    assert (await get_message(client, account, answer["id"]))["status"] == "streaming"


async def test_chunks_then_complete_store_the_answer(fake_service, make_client):
    service, client, account, chat, answer, body = await started(fake_service, make_client)
    path = callback_path(body)
    for seq, text in enumerate(["Hel", "lo", " world"]):
        resp = await client.post(path, json={"type": "chunk", "content": text, "seq": seq})
        assert resp.status == 200 and await resp.json() == {"ok": True}
    live = await get_message(client, account, answer["id"])
    assert live["status"] == "streaming" and live["content"] == "Hello world"
    source = {"title": "Doc", "url": "https://example.com/doc", "content": "a passage"}
    resp = await client.post(path, json={"type": "complete", "sources": [source]})
    assert resp.status == 200
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete" and stored["content"] == "Hello world"
    assert stored["sources"] == [source] and stored["completed_at"] is not None and stored["error"] is None
