"""Lua scripts called over one pipelined connection (chatserver/script_pipe.py)."""

import asyncio
import uuid

import pytest
import redis.asyncio as redis_async
from redis.exceptions import ResponseError
from support.net import free_port

from chatserver.script_pipe import ScriptPipe

# a source Redis has never seen (its own SHA), so its first calls meet NOSCRIPT
COUNT = "-- {}\nreturn redis.call('INCR', KEYS[1])"
FAIL_ON_BAD = "-- {}\nif ARGV[1] == 'bad' then return redis.error_reply('refused') end\nreturn ARGV[1]"
APPEND = "-- {}\nreturn redis.call('APPEND', KEYS[1], ARGV[1])"


@pytest.fixture
async def redis(own_redis):
    """A redis-server of the test's own: the tests list, kill and flush its
    clients and scripts, which on the shared server would hit everyone's."""
    client = redis_async.Redis.from_url(own_redis.url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def pipe(redis):
    pipe = ScriptPipe(redis)
    yield pipe
    await pipe.close()


def fresh(source: str) -> str:
    return source.format(uuid.uuid4().hex)


async def scripts_connections(redis) -> int:
    """Connections to Redis besides the pool's own."""
    return len([c for c in await redis.client_list() if c["cmd"] != "client|list"])


async def test_calls_made_together_run_once_each_in_the_order_they_were_made(pipe, redis, redis_prefix):
    script = pipe.script(fresh(COUNT))
    key = f"{redis_prefix}:count"
    results = await asyncio.gather(*(script([key]) for _ in range(50)))
    assert results == list(range(1, 51))
    assert await redis.get(key) == "50"


async def test_every_call_shares_one_connection(pipe, redis, redis_prefix):
    before = await scripts_connections(redis)
    counting, appending = pipe.script(fresh(COUNT)), pipe.script(fresh(APPEND))
    await asyncio.gather(*(counting([f"{redis_prefix}:count:{i}"]) for i in range(50)),
                         *(appending([f"{redis_prefix}:text"], [str(i)]) for i in range(50)))
    await counting([f"{redis_prefix}:count:0"])
    assert await scripts_connections(redis) == before + 1


async def test_an_error_fails_only_its_own_call(pipe):
    script = pipe.script(fresh(FAIL_ON_BAD))
    results = await asyncio.gather(script([], ["a"]), script([], ["bad"]), script([], ["c"]),
                                   return_exceptions=True)
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], ResponseError) and "refused" in str(results[1])


async def test_a_lost_connection_fails_every_call_made_together(redis_prefix):
    nowhere = redis_async.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    pipe = ScriptPipe(nowhere)
    try:
        script = pipe.script(fresh(COUNT))
        results = await asyncio.gather(*(script([f"{redis_prefix}:x"]) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, redis_async.ConnectionError) for r in results)
    finally:
        await pipe.close()
        await nowhere.aclose()


async def test_a_cancelled_caller_leaves_the_others_their_results(pipe, redis, redis_prefix):
    script = pipe.script(fresh(COUNT))
    key = f"{redis_prefix}:count"
    calls = [asyncio.ensure_future(script([key])) for _ in range(3)]
    await asyncio.sleep(0)
    calls[1].cancel()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert results[0] == 1 and results[2] == 3
    # the cancelled call had been sent with the others, as a sent command would be
    assert await redis.get(key) == "3"


async def test_every_reply_is_heard_also_of_a_cancelled_call(redis, redis_prefix):
    heard = []
    pipe = ScriptPipe(redis)
    try:
        script = pipe.script(fresh(COUNT), lambda args, reply: heard.append(reply))
        calls = [asyncio.ensure_future(script([f"{redis_prefix}:count"], [i])) for i in range(3)]
        await asyncio.sleep(0)
        calls[0].cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        assert heard == [1, 2, 3]
    finally:
        await pipe.close()


async def test_scripts_redis_forgot_run_again_in_order_with_the_calls_made_meanwhile(pipe, redis, redis_prefix):
    script = pipe.script(fresh(APPEND))
    key = f"{redis_prefix}:text"
    await script([key], ["a"])
    await redis.script_flush()
    first = [asyncio.ensure_future(script([key], [c])) for c in "bcd"]
    await asyncio.sleep(0)
    # made while the first ones are refused and sent again: they wait behind them
    later = [asyncio.ensure_future(script([key], [c])) for c in "ef"]
    await asyncio.gather(*first, *later)
    assert await redis.get(key) == "abcdef"


async def test_a_connection_lost_is_opened_again_by_the_next_call(pipe, redis, redis_prefix):
    script = pipe.script(fresh(COUNT))
    key = f"{redis_prefix}:count"
    await script([key])
    for client in await redis.client_list():
        if client["cmd"] == "evalsha":
            await redis.client_kill_filter(_id=client["id"])
    await asyncio.sleep(0.1)
    assert await script([key]) == 2
