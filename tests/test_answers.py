"""Cancel and regenerate (REST and WebSocket), and deleting a chat mid-answer."""

from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.fake_ai_service import callback_path, start_callback_service
from support.messages import get_message, idle, post_message
from support.served_app import app_of
from support.ws_frames import open_ws, read_to_end, receive

from chatserver.ai.answer_job import generate


async def streaming(fake_service, make_client):
    service, client = await start_callback_service(fake_service, make_client)
    account = await register(client)
    chat = await create_chat(client, account)
    posted = await post_message(client, account, chat["id"], "Explain")
    path = callback_path(await service.request_for(posted["assistant_message"]["id"]))
    await idle(client)
    await client.post(path, json={"type": "chunk", "content": "Partial", "seq": 0})
    return service, client, account, chat, posted, path


async def test_rest_cancel_keeps_the_partial_text_and_later_callbacks_get_409(fake_service, make_client):
    service, client, account, chat, posted, path = await streaming(fake_service, make_client)
    answer = posted["assistant_message"]
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert await receive(ws) == {"type": "stream_content", "message_id": answer["id"], "content": "Partial"}
    resp = await client.post(f"/api/messages/{answer['id']}/cancel", headers=account.headers)
    assert resp.status == 200
    body = await resp.json()
    assert (body["status"], body["content"], body["error"]) == ("cancelled", "Partial", "cancelled")
    assert body["completed_at"] is not None
    assert await read_to_end(ws) == [{"error": "cancelled", "message_id": answer["id"], "status": "cancelled"}]
    resp = await client.post(path, json={"type": "chunk", "content": " more", "seq": 1})
    assert resp.status == 409
    resp = await client.post(f"/api/messages/{answer['id']}/cancel", headers=account.headers)
    assert resp.status == 409
    assert_error(await resp.json(), "message_finished")
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("cancelled", "Partial")


async def test_cancel_of_a_finished_or_user_message_is_409_and_of_anothers_is_404(fake_service, make_client):
    service, client, account, chat, posted, path = await streaming(fake_service, make_client)
    await client.post(path, json={"type": "complete", "seq": 1})
    for message in (posted["assistant_message"], posted["user_message"]):
        resp = await client.post(f"/api/messages/{message['id']}/cancel", headers=account.headers)
        assert resp.status == 409
        assert_error(await resp.json(), "message_finished")
    stranger = await register(client)
    resp = await client.post(f"/api/messages/{posted['assistant_message']['id']}/cancel", headers=stranger.headers)
    assert resp.status == 404
    assert (await get_message(client, account, posted["assistant_message"]["id"]))["status"] == "complete"


async def test_cancel_of_a_pending_answer_stops_its_job(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "hi"))["assistant_message"]
    resp = await client.post(f"/api/messages/{answer['id']}/cancel", headers=account.headers)
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    await generate(app_of(client), answer["id"])
    stored = await get_message(client, account, answer["id"])
    assert (stored["status"], stored["content"]) == ("cancelled", "")


async def test_websocket_cancel_tells_every_watcher(fake_service, make_client):
    service, client, account, chat, posted, path = await streaming(fake_service, make_client)
    answer = posted["assistant_message"]
    watcher, canceller = await open_ws(client, account, chat["id"]), await open_ws(client, account, chat["id"])
    await watcher.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert (await receive(watcher))["content"] == "Partial"
    await canceller.send_json({"type": "cancel", "message_id": answer["id"]})
    assert await read_to_end(watcher) == [{"error": "cancelled", "message_id": answer["id"], "status": "cancelled"}]
    await canceller.send_json({"type": "cancel", "message_id": answer["id"]})
    assert await receive(canceller) == {"error": "the message is already finished", "message_id": answer["id"]}
    assert (await get_message(client, account, answer["id"]))["status"] == "cancelled"


async def test_regenerate_makes_a_new_pending_answer_beside_the_old_one(fake_service, make_client):
    service, client, account, chat, posted, path = await streaming(fake_service, make_client)
    old = posted["assistant_message"]
    await client.post(path, json={"type": "complete", "seq": 1})
    resp = await client.post(f"/api/messages/{old['id']}/regenerate", headers=account.headers)
    assert resp.status == 201
    new = await resp.json()
    assert new["role"] == "assistant" and new["status"] == "pending" and new["id"] != old["id"]
    assert new["content"] == "" and new["chat_id"] == chat["id"]
    request = await service.request_for(new["id"])
    assert request["message_id"] == new["id"] and request["message"] == "Explain"
    assert (await get_message(client, account, old["id"]))["content"] == "Partial"
    listed = (await (await client.get(f"/api/chats/{chat['id']}/messages", headers=account.headers)).json())["items"]
    # the shown branch holds the new answer; the old one is its sibling
    assert [m["id"] for m in listed] == [posted["user_message"]["id"], new["id"]]
    assert listed[1]["siblings"] == [old["id"], new["id"]]


async def test_regenerate_while_streaming_cancels_the_running_answer(fake_service, make_client):
    service, client, account, chat, posted, path = await streaming(fake_service, make_client)
    old = posted["assistant_message"]
    resp = await client.post(f"/api/messages/{old['id']}/regenerate", headers=account.headers)
    assert resp.status == 201
    stored = await get_message(client, account, old["id"])
    assert (stored["status"], stored["content"]) == ("cancelled", "Partial")
    assert (await client.post(path, json={"type": "chunk", "content": "x", "seq": 1})).status == 409


async def test_regenerate_a_user_message_is_422(client, user, chat):
    question = (await post_message(client, user, chat["id"], "hi"))["user_message"]
    resp = await client.post(f"/api/messages/{question['id']}/regenerate", headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "not_an_answer")


async def test_deleting_a_chat_cancels_its_generations(fake_service, make_client):
    service, client, account, chat, posted, path = await streaming(fake_service, make_client)
    answer = posted["assistant_message"]
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    await receive(ws)
    assert (await client.delete(f"/api/chats/{chat['id']}", headers=account.headers)).status == 204
    assert await read_to_end(ws) == [{"error": "the chat was deleted", "message_id": answer["id"],
                                      "status": "cancelled"}]
    assert (await client.post(path, json={"type": "chunk", "content": "x", "seq": 1})).status == 409
    resp = await client.get(f"/api/messages/{answer['id']}", headers=account.headers)
    assert resp.status == 404
