"""Server-sent events on GET /api/messages/{id}/stream: the whole answer, exact
resume from any Last-Event-ID, finished and failed answers, keep-alives, and
a client that goes away."""

import asyncio
import json
import random
import uuid

from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.messages import post_message
from support.served_app import app_of

from chatserver.live.answers import ANSWERS
from chatserver.live.fanout import FANOUT
from chatserver.live.state import ANSWER_STATE
from chatserver.live.wire import Event

PIECES = ["Hel", "lo, ", "wörld", " — ", "ünïcødé 🎉", " and", " more", "."]
FULL = "".join(PIECES)


async def pending(make_client, **settings):
    client = await make_client(start_workers=False, **settings)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "q"))["assistant_message"]
    streams = app_of(client)[ANSWERS]
    await app_of(client)[ANSWER_STATE].open(uuid.UUID(answer["id"]), "test")
    return client, account, answer, streams


def parse(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":"):
                fields.setdefault("comment", True)
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        if "event" in fields:
            events.append({"event": fields["event"], "id": int(fields["id"]), "data": json.loads(fields["data"])})
        elif fields.get("comment"):
            events.append({"event": "comment"})
    return events


async def followed(app, message_id: str, readers: int = 1) -> None:
    """Until `readers` clients follow the answer (they connected and read what was there)."""
    async with asyncio.timeout(30):
        while len(app[FANOUT].subscribers.get(message_id, ())) < readers:
            await asyncio.sleep(0.01)


def text_of(events: list[dict]) -> str:
    return "".join(e["data"]["content"] for e in events if e["event"] in ("content", "chunk"))


async def stream(client, account, message_id, last_event_id=None) -> list[dict]:
    headers = dict(account.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    resp = await client.get(f"/api/messages/{message_id}/stream", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    return parse(await resp.text())


async def feed(streams, answer, pieces, finish=True):
    message_id, chat_id = uuid.UUID(answer["id"]), uuid.UUID(answer["chat_id"])
    for piece in pieces:
        await asyncio.sleep(0.01)
        assert await streams.add(message_id, chat_id, Event.chunk(piece))
    if finish:
        await streams.finish(message_id, chat_id, "complete", sources=[{"title": "t", "url": "u", "content": "c"}])


async def test_the_full_stream_is_content_then_chunks_then_complete(make_client):
    client, account, answer, streams = await pending(make_client)
    await streams.add(uuid.UUID(answer["id"]), uuid.UUID(answer["chat_id"]), Event.chunk(PIECES[0]))
    reading = asyncio.create_task(stream(client, account, answer["id"]))
    await followed(app_of(client), answer["id"])
    await feed(streams, answer, PIECES[1:])
    events = await reading
    assert events[0]["event"] == "content"
    assert {e["event"] for e in events[1:-1]} <= {"chunk"}
    assert events[-1] == {"event": "complete", "id": len(FULL), "data": {"sources": [{"title": "t", "url": "u",
                                                                                       "content": "c"}]}}
    assert text_of(events) == FULL
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and ids[-2] == len(FULL)


async def test_resume_from_random_points_of_a_live_answer_is_exact(make_client):
    rng = random.Random(11)
    client, account, answer, streams = await pending(make_client)
    half = len(PIECES) // 2
    await feed(streams, answer, PIECES[:half], finish=False)
    sent = "".join(PIECES[:half])
    points = sorted({0, len(sent), *(rng.randrange(0, len(FULL) + 1) for _ in range(8))})
    readers = {n: asyncio.create_task(stream(client, account, answer["id"], n)) for n in points}
    await followed(app_of(client), answer["id"], len(points))
    await feed(streams, answer, PIECES[half:])
    for n, reader in readers.items():
        events = await reader
        assert all(e["event"] != "content" for e in events)
        assert text_of(events) == FULL[n:], n
        assert events[-1]["event"] == "complete"


async def test_resume_of_a_finished_answer_gives_the_rest_and_ends(make_client):
    client, account, answer, streams = await pending(make_client)
    await feed(streams, answer, PIECES)
    for n in range(len(FULL) + 1):
        events = await stream(client, account, answer["id"], n)
        assert text_of(events) == FULL[n:]
        assert events[-1]["event"] == "complete"


async def test_a_finished_message_is_its_content_then_complete(make_client):
    client, account, answer, streams = await pending(make_client)
    await feed(streams, answer, PIECES)
    events = await stream(client, account, answer["id"])
    assert [e["event"] for e in events] == ["content", "complete"]
    assert events[0]["data"]["content"] == FULL and events[0]["id"] == len(FULL)


async def test_a_failed_message_ends_with_an_error_event(make_client):
    client, account, answer, streams = await pending(make_client)
    await feed(streams, answer, PIECES[:2], finish=False)
    await streams.finish(uuid.UUID(answer["id"]), uuid.UUID(answer["chat_id"]), "failed", error="model broke")
    events = await stream(client, account, answer["id"])
    assert [e["event"] for e in events] == ["content", "error"]
    assert events[0]["data"]["content"] == "".join(PIECES[:2])
    assert events[1]["data"]["error"] == "model broke"


async def test_keep_alive_comments_are_sent_while_nothing_happens(make_client):
    client, account, answer, streams = await pending(make_client, SSE_KEEPALIVE_SECONDS=0.05)
    resp = await client.get(f"/api/messages/{answer['id']}/stream", headers=account.headers)
    assert resp.status == 200
    received = b""
    async with asyncio.timeout(30):
        while not any(line.startswith(b":") for line in received.splitlines()):
            received += await resp.content.readline()
    await feed(streams, answer, ["done"])
    events = parse((received + await resp.content.read()).decode())
    assert any(e["event"] == "comment" for e in events)
    assert text_of(events) == "done"


async def test_a_client_that_goes_away_stops_being_followed(make_client):
    client, account, answer, streams = await pending(make_client, SSE_KEEPALIVE_SECONDS=0.05)
    resp = await client.get(f"/api/messages/{answer['id']}/stream", headers=account.headers)
    assert (await resp.content.readline()).startswith(b"event: content")
    subscribers = app_of(client)[FANOUT].subscribers
    assert answer["id"] in subscribers
    resp.close()
    for _ in range(200):
        if answer["id"] not in subscribers:
            break
        await asyncio.sleep(0.05)
    assert answer["id"] not in subscribers
    await feed(streams, answer, ["still", " answered"])
    events = await stream(client, account, answer["id"])
    assert text_of(events) == "still answered"


async def test_another_users_message_and_a_bad_last_event_id_are_refused(make_client):
    client, account, answer, _ = await pending(make_client)
    stranger = await register(client)
    resp = await client.get(f"/api/messages/{answer['id']}/stream", headers=stranger.headers)
    assert resp.status == 404
    resp = await client.get(f"/api/messages/{answer['id']}/stream",
                            headers={**account.headers, "Last-Event-ID": "ten"})
    assert resp.status == 422
    assert_error(await resp.json(), "invalid_last_event_id")
    resp = await client.get(f"/api/messages/{answer['id']}/stream")
    assert resp.status == 401


async def test_deleting_the_api_key_ends_its_stream_in_every_process(make_client):
    client, account, answer, streams = await pending(make_client)
    other_process = await make_client(start_workers=False)
    made = await (await client.post("/api/keys", json={"name": "reader"}, headers=account.headers)).json()
    resp = await client.get(f"/api/messages/{answer['id']}/stream", headers={"Authorization": f"Bearer {made['key']}"})
    assert resp.status == 200
    await streams.add(uuid.UUID(answer["id"]), uuid.UUID(answer["chat_id"]), Event.chunk("Hel"))
    assert (await resp.content.readuntil(b"\n\n")).startswith(b"event: content")

    assert (await other_process.delete(f"/api/keys/{made['id']}", headers=account.headers)).status == 204
    rest = parse((await asyncio.wait_for(resp.content.read(), 10)).decode())
    assert rest[-1]["event"] == "error"
    assert rest[-1]["data"]["code"] == "unauthorized"
    # the answer itself goes on, for whoever may still read it
    assert await streams.add(uuid.UUID(answer["id"]), uuid.UUID(answer["chat_id"]), Event.chunk("lo"))
