"""A Lua script whose calls share round trips to Redis.

Every call made during one turn of the event loop goes to Redis in one
pipeline: one write and one read for them all, where each call would
otherwise cost its own. Under load many callbacks, appends and snapshots
land in the same turn (50 streams starting at once, bench/ttft.py; callbacks
flat out, bench/relay.py), and redis-py's cost per command is most of what a
callback costs beyond aiohttp itself.

Redis runs the calls of a pipeline one after another, in the order they were
made, each script as atomically as alone. A call whose caller was cancelled
still runs, as a command already sent would; so `on_reply`, when given, hears
every call's reply (or the exception that took it), whoever still waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as redis_async
from redis.exceptions import NoScriptError

log = logging.getLogger(__name__)

_Call = tuple[Sequence[Any], Sequence[Any], asyncio.Future]
# called with a call's args and its reply, or the exception that took it
OnReply = Callable[[Sequence[Any], Any], None]


class CoalescedScript:
    def __init__(self, redis: redis_async.Redis, source: str, on_reply: OnReply | None = None):
        self.redis = redis
        self.script = redis.register_script(source)
        self.on_reply = on_reply
        self._waiting: list[_Call] = []
        self._sending: set[asyncio.Task] = set()

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((keys, args, future))
        if len(self._waiting) == 1:
            # after the other callbacks of this turn have added their calls
            loop.call_soon(self._send)
        return await future

    def _send(self) -> None:
        calls, self._waiting = self._waiting, []
        task = asyncio.create_task(self._run(calls))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run(self, calls: list[_Call]) -> None:
        try:
            if len(calls) == 1:
                keys, args, _ = calls[0]
                results: list[Any] = [await self.script(keys=keys, args=args)]
            else:
                results = await self._pipelined(calls)
        except Exception as exc:
            self._tell(calls, [exc] * len(calls))
            for *_, future in calls:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            self._tell(calls, [asyncio.CancelledError()] * len(calls))
            for *_, future in calls:
                future.cancel()
            raise
        self._tell(calls, results)
        for (*_, future), result in zip(calls, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _tell(self, calls: list[_Call], results: list[Any]) -> None:
        if self.on_reply is not None:
            for (_, args, _), result in zip(calls, results, strict=True):
                try:
                    self.on_reply(args, result)
                except Exception:
                    # the callers still get their replies
                    log.exception("a script's reply could not be handed over")

    async def _pipelined(self, calls: list[_Call]) -> list[Any]:
        results = await self._pipeline(calls)
        unknown = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if unknown:
            # Redis restarted or flushed its scripts: load it, and send again
            # only the calls it refused (the others ran and must not run twice)
            await self.redis.script_load(self.script.script)
            again = await self._pipeline([calls[i] for i in unknown])
            for i, result in zip(unknown, again, strict=True):
                results[i] = result
        return results

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for keys, args, _ in calls:
                pipe.evalsha(self.script.sha, len(keys), *keys, *args)
            return await pipe.execute(raise_on_error=False)
