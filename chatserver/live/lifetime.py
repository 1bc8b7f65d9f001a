"""The live layer's objects, made once per app, and the listener's lifetime."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis_async
from aiohttp import web

from chatserver import appkeys
from chatserver.live.answers import ANSWERS, Answers
from chatserver.live.chat_events import CHAT_EVENTS, ChatEvents
from chatserver.live.fanout import FANOUT, Fanout, listener_client_name
from chatserver.live.follow import FOLLOWERS, Followers
from chatserver.live.quotas import QUOTAS, Quotas
from chatserver.live.revocation import REVOCATIONS, Revocations
from chatserver.live.state import ANSWER_STATE, AnswerState


async def live_ctx(app: web.Application):
    redis, keys, db = app[appkeys.REDIS], app[appkeys.KEYS], app[appkeys.DB]
    fanout = Fanout(keys)
    state = AnswerState(redis, keys, app[appkeys.SETTINGS], fanout)
    events = ChatEvents(redis, keys, db, state, fanout)
    # a client of its own: a subscribed connection that breaks must never be
    # handed back to the pool that runs ordinary commands
    client = redis_async.Redis.from_url(app[appkeys.REDIS_URL], decode_responses=True,
                                        client_name=listener_client_name(keys))
    await fanout.connect(client)
    app[ANSWER_STATE], app[FANOUT], app[CHAT_EVENTS] = state, fanout, events
    app[ANSWERS] = Answers(state, db, events, app[appkeys.SETTINGS])
    app[FOLLOWERS] = Followers(state, fanout, db)
    app[REVOCATIONS] = revocations = Revocations(db, redis, keys)
    app[QUOTAS] = Quotas(redis, keys)
    tasks = [asyncio.create_task(fanout.listen(client)), asyncio.create_task(revocations.sweep())]
    # subscribed before the first request, so no revocation published after it is missed
    async with fanout.subscribe(keys.revocations) as heard:
        tasks.append(asyncio.create_task(revocations.listen(heard)))
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await fanout.close()
    await client.aclose()
    await state.close()
