"""The OpenAI-compatible backend against a fake /v1/chat/completions server."""

import asyncio
import uuid

from support.accounts import create_chat, register
from support.fake_openai import FakeOpenAI, start_openai_service
from support.messages import get_message, idle, post_message
from support.served_app import db_of
from support.ws_frames import follow, open_ws, read_to_end, receive, streamed_text


async def test_deltas_stream_to_the_socket_and_the_answer_is_stored(fake_service, make_client):
    service, client = await start_openai_service(fake_service, make_client)
    account = await register(client)
    chat = await create_chat(client, account)
    first = (await post_message(client, account, chat["id"], "First of two"))["assistant_message"]
    await idle(client)
    answer = (await post_message(client, account, chat["id"], "Second of two"))["assistant_message"]
    await idle(client)
    ws = await open_ws(client, account, chat["id"])
    assert await follow(ws, answer["id"]) == [
        {"type": "stream_content", "message_id": answer["id"], "content": "Hello!"},
        {"type": "complete", "message_id": answer["id"], "sources": [], "finish_reason": "stop"}]
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"], stored["sources"]) == ("complete", "Hello!", [])
    assert (stored["finish_reason"], stored["model"], stored["usage"]) == ("stop", "test-model", None)
    [request] = service.requests_about("Second of two")
    assert request["model"] == "test-model" and request["stream"] is True
    assert request["messages"][1:] == [{"role": "user", "content": "First of two"},
                                       {"role": "assistant", "content": "Hello!"},
                                       {"role": "user", "content": "Second of two"}]
    assert service.headers[-1]["Authorization"] == "Bearer sk-test"
    assert first["id"] != answer["id"]


async def test_extra_headers_reach_the_model_server(fake_service, make_client):
    service, client = await start_openai_service(fake_service, make_client,
                                                 OPENAI_HEADERS='{"api-key": "azure-key", "X-Title": "chatserver"}')
    account = await register(client)
    chat = await create_chat(client, account)
    await post_message(client, account, chat["id"], "Who sent this?")
    await idle(client)
    # by question: the start-up sweep may have sent an earlier test's forgotten answer here too
    (headers,) = [h for r, h in zip(service.requests, service.headers, strict=True)
                  if r["messages"][-1]["content"] == "Who sent this?"]
    assert (headers["api-key"], headers["X-Title"]) == ("azure-key", "chatserver")


async def test_live_watcher_sees_each_delta(fake_service, make_client):
    hold = asyncio.Event()
    service, client = await start_openai_service(fake_service, make_client, FakeOpenAI(hold=hold))
    account = await register(client)
    chat = await create_chat(client, account)
    ws = await open_ws(client, account, chat["id"])
    answer = (await post_message(client, account, chat["id"], "Hi"))["assistant_message"]
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    first = await receive(ws)
    frames = [first]
    if first["content"] != "Hel":
        frames.append(await receive(ws))
    hold.set()
    frames += await read_to_end(ws)
    assert streamed_text(frames) == "Hello!"
    assert frames[-1] == {"type": "complete", "message_id": answer["id"], "sources": [], "finish_reason": "stop"}


async def test_a_5xx_is_retried(fake_service, make_client):
    service, client = await start_openai_service(fake_service, make_client, FakeOpenAI(statuses=(503, 500, 200)))
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "Retry me"))["assistant_message"]
    await idle(client)
    assert len(service.requests_about("Retry me")) == 3
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("complete", "Hello!")


async def test_a_4xx_fails_at_once(fake_service, make_client):
    service, client = await start_openai_service(fake_service, make_client, FakeOpenAI(statuses=(401,)))
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "Refuse me"))["assistant_message"]
    await idle(client)
    assert len(service.requests_about("Refuse me")) == 1
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["error"], stored["content"]) == ("failed", "HTTP 401: nope", "")


async def test_a_broken_stream_fails_keeping_the_text_so_far(fake_service, make_client):
    service, client = await start_openai_service(fake_service, make_client, FakeOpenAI(break_after=2))
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "Hi"))["assistant_message"]
    await idle(client)
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("failed", "Hello")
    assert stored["error"] == "the model server sent a malformed event"
    ws = await open_ws(client, account, chat["id"])
    assert await follow(ws, answer["id"]) == [
        {"type": "stream_content", "message_id": answer["id"], "content": "Hello"},
        {"error": "the model server sent a malformed event", "message_id": answer["id"], "status": "failed"}]


async def test_cancel_closes_the_model_stream_and_keeps_the_partial_text(fake_service, make_client):
    hold = asyncio.Event()
    service, client = await start_openai_service(fake_service, make_client, FakeOpenAI(hold=hold))
    account = await register(client)
    chat = await create_chat(client, account)
    ws = await open_ws(client, account, chat["id"])
    answer = (await post_message(client, account, chat["id"], "Hi"))["assistant_message"]
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    frames = [await receive(ws)]
    if frames[0]["content"] != "Hel":
        frames.append(await receive(ws))
    resp = await client.post(f"/api/messages/{answer['id']}/cancel", headers=account.headers)
    assert resp.status == 200
    body = await resp.json()
    assert (body["status"], body["content"], body["error"]) == ("cancelled", "Hel", "cancelled")
    await asyncio.wait_for(service.disconnected.wait(), 30)
    await idle(client)
    frames += await read_to_end(ws)
    assert frames[-1] == {"error": "cancelled", "message_id": answer["id"], "status": "cancelled"}
    assert streamed_text(frames) == "Hel"
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("cancelled", "Hel")


async def test_attached_files_go_inside_the_last_user_message(fake_service, make_client):
    service, client = await start_openai_service(fake_service, make_client)
    account = await register(client)
    chat = await create_chat(client, account)
    file_id = await db_of(client).fetchval(
        """
        INSERT INTO files (user_id, name, storage_name, size, sha256, content_type, status, text_content)
        VALUES (%s, 'menu.txt', %s, 1, 'x', 'text/plain', 'ready', 'Soup of the day: leek.') RETURNING id
        """, (account.id, uuid.uuid4().hex))
    await post_message(client, account, chat["id"], "What soup is there today?", file_ids=[str(file_id)])
    await idle(client)
    [request] = [r for r in service.requests if r["messages"][-1]["content"].endswith("What soup is there today?")]
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][-1]["content"] == (
        "Attached files:\n--- menu.txt ---\nSoup of the day: leek.\n--- end of files ---\n\nWhat soup is there today?")


async def test_reasoning_is_kept_apart_streamed_and_resumed(fake_service, make_client):
    hold = asyncio.Event()
    service, client = await start_openai_service(fake_service, make_client,
                                                 FakeOpenAI(hold=hold, reasoning=("Let me ", "think.")))
    account = await register(client)
    chat = await create_chat(client, account)
    ws = await open_ws(client, account, chat["id"])
    answer = (await post_message(client, account, chat["id"], "Think first"))["assistant_message"]
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    frames = [await receive(ws)]
    while "Hel" not in streamed_text(frames):
        frames.append(await receive(ws))
    hold.set()
    frames += await read_to_end(ws)
    thought = frames[0].get("reasoning", "") + "".join(f["content"] for f in frames if f.get("type") == "reasoning")
    assert thought == "Let me think."
    assert streamed_text(frames) == "Hello!"
    await idle(client)
    stored = await get_message(client, account, answer["id"])
    assert (stored["content"], stored["reasoning"]) == ("Hello!", "Let me think.")
    again = await follow(ws, answer["id"])
    assert again[0] == {"type": "stream_content", "message_id": answer["id"], "content": "Hello!",
                        "reasoning": "Let me think."}


async def test_a_read_right_after_complete_shows_the_final_answer(fake_service, make_client):
    service, client = await start_openai_service(fake_service, make_client)
    account = await register(client)
    chat = await create_chat(client, account)
    ws = await open_ws(client, account, chat["id"])
    for n in range(10):
        answer = (await post_message(client, account, chat["id"], f"Question {n}"))["assistant_message"]
        await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
        frames = await read_to_end(ws)
        assert frames[-1]["type"] == "complete"
        stored = await get_message(client, account, answer["id"])
        assert (stored["status"], stored["content"], stored["finish_reason"]) == ("complete", "Hello!", "stop")
        assert stored["completed_at"] is not None
    await idle(client)
