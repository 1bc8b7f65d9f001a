"""Pieces of many answers written in the same turn of the event loop (one
write to Redis for them all, chatserver/script_pipe.py) stay each answer's own;
a local generation's in-order pieces (scripts.APPEND) keep APPLY's rules."""

import asyncio
import uuid

import pytest
import redis.asyncio as redis_async
from support.served_app import app_of

from chatserver import appkeys
from chatserver.live.answers import ANSWERS
from chatserver.live.follow import FOLLOWERS
from chatserver.live.state import ANSWER_STATE
from chatserver.live.wire import End, Event, Text

ANSWERS_AT_ONCE = 20
ROUNDS = 10


async def follow_to_end(app, message_id: uuid.UUID) -> str:
    """What one follower shows of an answer: the text so far, then the chunks."""
    text = ""
    async for item in app[FOLLOWERS].follow(message_id):
        if isinstance(item, Text) and item.kind in ("content", "chunk"):
            text += item.text
        elif isinstance(item, End):
            return text
    raise AssertionError("the answer never ended")


async def open_answers(app, count: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    ids = [(uuid.uuid4(), uuid.uuid4()) for _ in range(count)]
    for message_id, _ in ids:
        await app[ANSWER_STATE].open(message_id)
    return ids


async def write_round(app, ids, piece: int) -> list:
    """One chunk of every answer, all in the same turn."""
    return await asyncio.gather(*(app[ANSWERS].add(m, c, Event.chunk(f"{i}.{piece};")) for i, (m, c) in enumerate(ids)),
                                return_exceptions=True)


async def test_chunks_of_many_answers_in_one_turn_reach_each_its_own_followers_in_order(make_client):
    app = app_of(await make_client(start_workers=False))
    ids = await open_answers(app, ANSWERS_AT_ONCE)
    followers = [asyncio.create_task(follow_to_end(app, m)) for m, _ in ids]
    await asyncio.sleep(0.1)
    for piece in range(ROUNDS):
        assert await write_round(app, ids, piece) == [True] * ANSWERS_AT_ONCE
        if piece == ROUNDS // 2:
            # followers joining half-way resume exactly
            followers += [asyncio.create_task(follow_to_end(app, m)) for m, _ in ids]
    for message_id, chat_id in ids:
        await app[ANSWERS].finish(message_id, chat_id, "complete")
    shown = await asyncio.gather(*followers)
    expected = ["".join(f"{i}.{piece};" for piece in range(ROUNDS)) for i in range(ANSWERS_AT_ONCE)]
    assert shown == expected + expected


async def test_a_batch_redis_drops_fails_each_call_and_its_followers_catch_up(make_client, own_redis):
    # its own redis-server: a pause and a kill of every script's connection would hit everyone's on the shared one
    app = app_of(await make_client(start_workers=False, REDIS_URL=own_redis.url))
    redis = app[appkeys.REDIS]
    ids = await open_answers(app, ANSWERS_AT_ONCE)
    followers = [asyncio.create_task(follow_to_end(app, m)) for m, _ in ids]
    await asyncio.sleep(0.1)
    assert await write_round(app, ids, 0) == [True] * ANSWERS_AT_ONCE
    # the next round waits in a paused Redis, and its connection is cut before it runs
    await redis.client_pause(2000, all=False)
    dropped = asyncio.ensure_future(write_round(app, ids, 1))
    await asyncio.sleep(0.2)
    for client in await redis.client_list():
        if client["cmd"] == "evalsha":
            await redis.client_kill_filter(_id=client["id"])
    await redis.client_unpause()
    outcomes = await dropped
    assert all(isinstance(outcome, redis_async.ConnectionError) for outcome in outcomes)
    # the next round opens a new connection; what the dropped one never applied is not shown
    assert await write_round(app, ids, 2) == [True] * ANSWERS_AT_ONCE
    for message_id, chat_id in ids:
        await app[ANSWERS].finish(message_id, chat_id, "complete")
    shown = await asyncio.wait_for(asyncio.gather(*followers), 10)
    assert shown == [f"{i}.0;{i}.2;" for i in range(ANSWERS_AT_ONCE)]


@pytest.mark.parametrize("kind", ["chunk", "reasoning"])
async def test_a_piece_for_an_answer_redis_does_not_hold_is_refused(make_client, kind):
    app = app_of(await make_client(start_workers=False))
    event = Event.chunk("x") if kind == "chunk" else Event.reasoning("x")
    assert await app[ANSWERS].add(uuid.uuid4(), uuid.uuid4(), event) is False


async def test_a_local_answer_past_its_size_limit_fails_with_what_it_had(make_client):
    app = app_of(await make_client(start_workers=False, MAX_ANSWER_BYTES=10))
    ((message_id, chat_id),) = await open_answers(app, 1)
    assert await app[ANSWERS].add(message_id, chat_id, Event.chunk("12345")) is True
    assert await app[ANSWERS].add(message_id, chat_id, Event.chunk("678901")) is False
    snap = await app[ANSWER_STATE].snapshot(message_id)
    assert snap is not None and snap.final is not None
    assert (snap.content, snap.final["status"]) == ("12345", "failed")
    assert "10 bytes" in snap.final["error"]


async def test_a_piece_after_the_end_is_refused_and_changes_nothing(make_client):
    app = app_of(await make_client(start_workers=False))
    ((message_id, chat_id),) = await open_answers(app, 1)
    assert await app[ANSWERS].add(message_id, chat_id, Event.reasoning("hm")) is True
    assert await app[ANSWERS].add(message_id, chat_id, Event.chunk("done")) is True
    await app[ANSWERS].finish(message_id, chat_id, "complete")
    assert await app[ANSWERS].add(message_id, chat_id, Event.chunk(" more")) is False
    snap = await app[ANSWER_STATE].snapshot(message_id)
    assert snap is not None
    assert (snap.content, snap.reasoning, snap.pieces) == ("done", "hm", 3)
