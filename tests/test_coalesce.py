"""A Lua script whose concurrent calls share round trips (live/coalesce.py)."""

import asyncio
import uuid

import pytest
import redis.asyncio as redis_async
from redis.exceptions import ResponseError
from support.net import free_port

from chatserver.live.coalesce import CoalescedScript

# a source Redis has never seen (its own SHA), so its first calls meet NOSCRIPT
COUNT = "-- {}\nreturn redis.call('INCR', KEYS[1])"
FAIL_ON_BAD = "-- {}\nif ARGV[1] == 'bad' then return redis.error_reply('refused') end\nreturn ARGV[1]"


@pytest.fixture
async def redis(servers):
    client = redis_async.Redis.from_url(servers["redis_url"], decode_responses=True)
    yield client
    await client.aclose()


def fresh(source: str) -> str:
    return source.format(uuid.uuid4().hex)


async def test_calls_made_together_run_once_each_in_the_order_they_were_made(redis, redis_prefix):
    script = CoalescedScript(redis, fresh(COUNT))
    key = f"{redis_prefix}:count"
    results = await asyncio.gather(*(script([key]) for _ in range(50)))
    assert results == list(range(1, 51))
    assert await redis.get(key) == "50"


async def test_calls_made_together_share_one_connection(servers, redis_prefix):
    client = redis_async.Redis.from_url(servers["redis_url"], decode_responses=True)
    try:
        script = CoalescedScript(client, fresh(COUNT))
        await script([f"{redis_prefix}:warm"])
        await asyncio.gather(*(script([f"{redis_prefix}:count:{i}"]) for i in range(50)))
        assert len(client.connection_pool._available_connections) == 1
    finally:
        await client.aclose()


async def test_an_error_fails_only_its_own_call(redis):
    script = CoalescedScript(redis, fresh(FAIL_ON_BAD))
    results = await asyncio.gather(script([], ["a"]), script([], ["bad"]), script([], ["c"]),
                                   return_exceptions=True)
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], ResponseError) and "refused" in str(results[1])


async def test_a_lost_connection_fails_every_call_made_together(redis_prefix):
    nowhere = redis_async.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    try:
        script = CoalescedScript(nowhere, fresh(COUNT))
        results = await asyncio.gather(*(script([f"{redis_prefix}:x"]) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, redis_async.ConnectionError) for r in results)
    finally:
        await nowhere.aclose()


async def test_a_cancelled_caller_leaves_the_others_their_results(redis, redis_prefix):
    script = CoalescedScript(redis, fresh(COUNT))
    key = f"{redis_prefix}:count"
    calls = [asyncio.ensure_future(script([key])) for _ in range(3)]
    await asyncio.sleep(0)
    calls[1].cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert results[0] == 1 and results[2] == 3
    # the cancelled call had been sent with the others, as a sent command would be
    assert await redis.get(key) == "3"
