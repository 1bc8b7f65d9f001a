"""Chat events on the WebSocket: subscribed sockets of a chat hear about every
change to it, whichever app instance made it; others hear nothing."""

import pytest
from support.accounts import create_chat, register
from support.messages import idle, post_message
from support.ws_frames import open_ws, receive, subscribed


@pytest.fixture
async def two(make_client):
    """Two app instances sharing PostgreSQL and Redis, as two server processes would."""
    first = await make_client()
    second = await make_client()
    account = await register(first)
    chat = await create_chat(first, account)
    return first, second, account, chat


async def both_idle(first, second):
    """Either instance's workers may run an answer's job."""
    await idle(first)
    await idle(second)


async def events_until(ws, wanted: int) -> list[dict]:
    return [await receive(ws) for _ in range(wanted)]


async def nothing_arrived(ws) -> bool:
    """No frame came before the answer to a ping sent now (a socket's frames keep their order)."""
    await ws.send_json({"type": "ping", "timestamp": 1})
    return await receive(ws) == {"type": "pong", "timestamp": 1}


async def test_a_post_on_one_instance_reaches_a_socket_on_the_other_with_the_answers_end(two):
    first, second, account, chat = two
    ws = await subscribed(second, account, chat["id"])
    posted = await post_message(first, account, chat["id"], "Hello from the other tab")
    events = await events_until(ws, 3)
    assert [e["type"] for e in events] == ["message_created", "message_created", "message_updated"]
    assert events[0]["message"]["id"] == posted["user_message"]["id"]
    assert events[0]["message"]["content"] == "Hello from the other tab"
    assert events[1]["message"]["id"] == posted["assistant_message"]["id"]
    assert events[2]["message"]["id"] == posted["assistant_message"]["id"]
    assert events[2]["message"]["status"] == "complete" and events[2]["message"]["content"]
    assert set(events[2]["message"]) >= {"parent_id", "siblings", "created_at", "completed_at"}


async def test_a_socket_that_never_subscribed_gets_no_events(two):
    first, second, account, chat = two
    ws = await open_ws(second, account, chat["id"])
    witness = await subscribed(second, account, chat["id"])
    await post_message(first, account, chat["id"], "quiet")
    await both_idle(first, second)
    await events_until(witness, 3)  # the second instance has passed on every event of the answer
    assert await nothing_arrived(ws)


async def test_a_socket_on_another_chat_is_not_woken(two):
    first, second, account, chat = two
    other = await create_chat(first, account)
    ws = await subscribed(second, account, other["id"])
    witness = await subscribed(second, account, chat["id"])
    await post_message(first, account, chat["id"], "not for the other chat")
    await both_idle(first, second)
    await events_until(witness, 3)  # the second instance has passed on every event of the answer
    assert await nothing_arrived(ws)


async def test_rename_and_branch_switch_are_chat_updated(two):
    first, second, account, chat = two
    posted = await post_message(first, account, chat["id"], "q")
    await both_idle(first, second)
    ws = await subscribed(second, account, chat["id"])
    await first.patch(f"/api/chats/{chat['id']}", json={"title": "Renamed"}, headers=account.headers)
    event = await receive(ws)
    assert event["type"] == "chat_updated" and event["chat"]["title"] == "Renamed"
    await first.post(f"/api/chats/{chat['id']}/branch", json={"message_id": posted["user_message"]["id"]},
                     headers=account.headers)
    event = await receive(ws)
    assert event["type"] == "chat_updated" and event["chat"]["shown_leaf"] == posted["assistant_message"]["id"]


async def test_an_untitled_chat_is_titled_from_its_first_message_and_told(two):
    first, second, account, _ = two
    resp = await first.post("/api/chats", json={}, headers=account.headers)
    chat = await resp.json()
    ws = await subscribed(second, account, chat["id"])
    await post_message(first, account, chat["id"], "How do   I bake sourdough bread at home without a proofing "
                                                   "basket or any special tools at all?")
    events = await events_until(ws, 3)
    titled = [e for e in events if e["type"] == "chat_updated"]
    assert titled and titled[0]["chat"]["title"] == "How do I bake sourdough bread at home without a proofing…"
    stored = await (await first.get(f"/api/chats/{chat['id']}", headers=account.headers)).json()
    assert stored["title"] == titled[0]["chat"]["title"]


async def test_a_titled_chat_keeps_its_title(client, user, chat):
    await post_message(client, user, chat["id"], "Something else entirely")
    stored = await (await client.get(f"/api/chats/{chat['id']}", headers=user.headers)).json()
    assert stored["title"] == chat["title"]


def told(event: dict) -> tuple[str, str]:
    """An event's type and the message it is about (for chat_updated, the shown leaf)."""
    return event["type"], event["chat"]["shown_leaf"] if event["type"] == "chat_updated" else event["message"]["id"]


async def test_edit_and_regenerate_are_message_created_then_chat_updated(two):
    first, second, account, chat = two
    posted = await post_message(first, account, chat["id"], "q")
    await both_idle(first, second)
    ws = await subscribed(second, account, chat["id"])
    resp = await first.post(f"/api/messages/{posted['user_message']['id']}/edit", json={"content": "q2"},
                            headers=account.headers)
    edited = await resp.json()
    events = await events_until(ws, 4)
    assert [told(e) for e in events] == [
        ("message_created", edited["user_message"]["id"]),
        ("message_created", edited["assistant_message"]["id"]),
        ("chat_updated", edited["assistant_message"]["id"]),
        ("message_updated", edited["assistant_message"]["id"])]
    resp = await first.post(f"/api/messages/{edited['assistant_message']['id']}/regenerate", headers=account.headers)
    new = await resp.json()
    events = await events_until(ws, 3)
    assert [told(e) for e in events] == [
        ("message_created", new["id"]), ("chat_updated", new["id"]), ("message_updated", new["id"])]


async def test_an_edit_switching_the_branch_tells_the_chat_as_the_branch_endpoint_does(two):
    first, second, account, chat = two
    posted = await post_message(first, account, chat["id"], "q")
    await both_idle(first, second)
    ws = await subscribed(second, account, chat["id"])
    resp = await first.post(f"/api/messages/{posted['user_message']['id']}/edit", json={"content": "q2"},
                            headers=account.headers)
    edited = await resp.json()
    updates = [e for e in await events_until(ws, 4) if e["type"] == "chat_updated"]
    stored = await (await first.get(f"/api/chats/{chat['id']}", headers=account.headers)).json()
    assert [u["chat"] for u in updates] == [stored]
    assert stored["shown_leaf"] == edited["assistant_message"]["id"]


async def test_cancel_is_message_updated(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    posted = await post_message(client, account, chat["id"], "q")
    ws = await subscribed(client, account, chat["id"])
    await client.post(f"/api/messages/{posted['assistant_message']['id']}/cancel", headers=account.headers)
    event = await receive(ws)
    assert event["type"] == "message_updated" and event["message"]["status"] == "cancelled"


async def test_deleting_the_chat_tells_and_closes_subscribed_sockets_with_4404(two):
    first, second, account, chat = two
    ws = await subscribed(second, account, chat["id"])
    resp = await first.delete(f"/api/chats/{chat['id']}", headers=account.headers)
    assert resp.status == 204
    assert await receive(ws) == {"type": "chat_deleted", "chat_id": chat["id"]}
    closing = await ws.receive(timeout=30)
    assert closing.data == 4404 or ws.close_code == 4404


async def test_subscribing_twice_answers_subscribed_and_delivers_once(client, user, chat):
    ws = await subscribed(client, user, chat["id"])
    await ws.send_json({"type": "subscribe"})
    assert await receive(ws) == {"type": "subscribed"}
    await client.patch(f"/api/chats/{chat['id']}", json={"title": "Once"}, headers=user.headers)
    assert (await receive(ws))["type"] == "chat_updated"
    # a second delivery of "Once" would come before the next event
    await client.patch(f"/api/chats/{chat['id']}", json={"title": "Twice"}, headers=user.headers)
    event = await receive(ws)
    assert event["type"] == "chat_updated" and event["chat"]["title"] == "Twice"
    assert await nothing_arrived(ws)
