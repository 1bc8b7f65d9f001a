"""An answer's pieces in the live layer (docs/frames.md): the scripts publish
a passing kind they do not know as it came, followers get every passing
piece in order through the codec alone, and a follower's subscription ends
with the answer."""

import asyncio
import uuid

from support.accounts import create_chat, register
from support.messages import post_message
from support.served_app import app_of

from chatserver import appkeys
from chatserver.live.answers import ANSWERS
from chatserver.live.fanout import FANOUT
from chatserver.live.follow import FOLLOWERS
from chatserver.live.state import ANSWER_STATE
from chatserver.live.wire import End, Event, Status, Text


async def pending_answer(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "q"))["assistant_message"]
    app = app_of(client)
    await app[ANSWER_STATE].open(uuid.UUID(answer["id"]), "test")
    return app, uuid.UUID(answer["id"]), uuid.UUID(chat["id"])


async def test_the_scripts_publish_a_kind_they_do_not_know_as_it_came(make_client):
    app, message_id, chat_id = await pending_answer(make_client)
    pubsub = app[appkeys.REDIS].pubsub()
    await pubsub.subscribe(app[appkeys.KEYS].chat_channel(chat_id))
    try:
        await app[ANSWER_STATE].apply(message_id, chat_id, [Event("x", '{"step":"search"}'), Event.chunk("Hi")])
        published = []
        async with asyncio.timeout(10):
            while len(published) < 2:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    published.append(message["data"])
    finally:
        await pubsub.aclose()
    assert published == [f'{message_id}|1|x|{{"step":"search"}}', f"{message_id}|2|c|Hi"]


async def test_a_follower_gets_every_passing_piece_of_one_call_in_order(make_client):
    app, message_id, chat_id = await pending_answer(make_client)
    items = app[FOLLOWERS].follow(message_id)
    assert await anext(items) == Text("content", "")
    await app[ANSWERS].apply(message_id, chat_id, [Event.status("retrying", 1), Event.status("retrying", 2),
                                                   Event.chunk("done")])
    async with asyncio.timeout(10):
        assert [await anext(items) for _ in range(3)] == [Status("retrying", 1), Status("retrying", 2),
                                                           Text("chunk", "done")]
    await items.aclose()


async def test_a_follower_is_unsubscribed_by_the_time_it_gets_the_end(make_client):
    app, message_id, chat_id = await pending_answer(make_client)
    items = app[FOLLOWERS].follow(message_id)
    assert await anext(items) == Text("content", "")
    assert str(message_id) in app[FANOUT].subscribers
    await app[ANSWERS].finish(message_id, chat_id, "complete")
    async with asyncio.timeout(10):
        end = await anext(items)
    assert isinstance(end, End) and end.status == "complete"
    assert str(message_id) not in app[FANOUT].subscribers
