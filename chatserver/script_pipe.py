"""Lua scripts called over one pipelined connection of the process's own.

An answer runs a script per piece, and redis-py costs about 100 µs of Python
per command (its pool, retries, time-outs, packing and parsing), four times
what the script costs Redis. Here a call is packed once, the calls made in
one turn of the event loop go out in one write, and a hiredis reader hands
each reply to its call as it arrives, in order, without a task or a pool
between: one connection carries every call, never waiting for one reply to
send the next.

Redis runs the calls one after another in the order they were made, each
script as atomically as alone. A call whose caller was cancelled still runs,
as a command already sent would; so `on_reply`, when given, hears every
call's reply (or the exception that took it), whoever still waits for it.
When Redis has forgotten a script (restarted, flushed) the calls it refused
are sent again once every call before them has replied, after loading it, and
every call made meanwhile waits behind them: the order holds through it.
A lost connection fails every call sent or waiting on it (ConnectionError);
the next call opens a new one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
import redis.asyncio as redis_async
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

log = logging.getLogger(__name__)

# called with a call's args and its reply, or the exception that took it
OnReply = Callable[[Sequence[Any], Any], None]


def pack(*parts: Any) -> bytes:
    """One command in Redis's protocol (str, bytes, int and float parts)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if isinstance(part, str):
            data = part.encode()
        elif isinstance(part, bytes):
            data = part
        elif isinstance(part, (int, float)):
            data = repr(part).encode()
        else:
            raise TypeError(f"cannot send {type(part).__name__} to Redis")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _error(message: str) -> ResponseError:
    """An error reply as redis-py would raise it."""
    if message.startswith("NOSCRIPT "):
        return NoScriptError(message[9:])
    return ResponseError(message[4:] if message.startswith("ERR ") else message)


class _Call:
    __slots__ = ("script", "command", "args", "future", "retried")

    def __init__(self, script: PipedScript | None, command: bytes, args: Sequence[Any], future: asyncio.Future):
        self.script, self.command, self.args, self.future = script, command, args, future
        self.retried = False


class _Connection(asyncio.Protocol):
    def __init__(self, pipe: ScriptPipe):
        self.pipe = pipe
        self.reader = hiredis.Reader(encoding="utf-8")
        self.sent: collections.deque[_Call] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []  # commands of this turn, written together at its end
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport's subclasses, but do all it does
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except Exception:
                # a reply that cannot be read leaves every later one unplaceable
                log.exception("an unreadable reply from Redis; dropping the scripts' connection")
                assert self.transport is not None
                self.transport.abort()
                return
            if reply is False:
                return
            self.pipe._replied(self, self.sent.popleft(), reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.pipe._lost(self, exc)


class ScriptPipe:
    """One per process: `redis` (a client of the app's Redis) says where Redis
    is and how to log in; its own pool is never used here."""

    def __init__(self, redis: redis_async.Redis):
        self.pool = redis.connection_pool
        self.scripts: list[PipedScript] = []
        self._conn: _Connection | None = None
        # calls not sent yet: while a connection opens, or behind calls sent again (see the module)
        self._held: list[_Call] | None = None
        self._again: list[_Call] = []
        self._connecting: asyncio.Task | None = None

    def script(self, source: str, on_reply: OnReply | None = None) -> PipedScript:
        script = PipedScript(self, source, on_reply)
        self.scripts.append(script)
        return script

    def call(self, script: PipedScript, keys: Sequence[Any], args: Sequence[Any]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        call = _Call(script, pack("EVALSHA", script.sha, len(keys), *keys, *args), args, loop.create_future())
        if self._held is not None:
            self._held.append(call)
        elif self._conn is None:
            self._held = [call]
            self._connecting = loop.create_task(self._connect())
        else:
            self._send(self._conn, call)
        return call.future

    def _send(self, conn: _Connection, call: _Call) -> None:
        conn.sent.append(call)
        conn.out.append(call.command)
        if len(conn.out) == 1:
            # after the other callbacks of this turn have added their calls
            asyncio.get_running_loop().call_soon(self._flush, conn)

    @staticmethod
    def _flush(conn: _Connection) -> None:
        out, conn.out = conn.out, []
        if not conn.lost and conn.transport is not None:
            conn.transport.write(b"".join(out))

    async def _connect(self) -> None:
        kwargs = self.pool.connection_kwargs
        loop = asyncio.get_running_loop()
        conn = _Connection(self)
        try:
            if "path" in kwargs:
                opening = loop.create_unix_connection(lambda: conn, kwargs["path"])
            else:
                ssl = None
                if issubclass(self.pool.connection_class, redis_async.SSLConnection):
                    ssl = self.pool.connection_class(**kwargs).ssl_context.get()
                opening = loop.create_connection(lambda: conn, kwargs.get("host", "localhost"),
                                                 kwargs.get("port", 6379), ssl=ssl)
            await asyncio.wait_for(opening, kwargs.get("socket_connect_timeout") or None)
            for command in self._handshake(kwargs):
                call = _Call(None, command, (), loop.create_future())
                self._send(conn, call)
                await call.future
        except (OSError, TimeoutError, ResponseError, RedisConnectionError) as exc:
            if conn.transport is not None:
                conn.transport.abort()
            self._fail_held(RedisConnectionError(f"the scripts' connection to Redis: {exc}"))
            return
        finally:
            self._connecting = None
        self._conn = conn
        self._release(conn)

    @staticmethod
    def _handshake(kwargs: dict) -> list[bytes]:
        commands = []
        if kwargs.get("password"):
            user = [kwargs["username"]] if kwargs.get("username") else []
            commands.append(pack("AUTH", *user, kwargs["password"]))
        if kwargs.get("db"):
            commands.append(pack("SELECT", kwargs["db"]))
        return commands

    def _release(self, conn: _Connection) -> None:
        """Send what was held: the calls refused for want of their script first
        (having loaded it), then the calls made meanwhile, in order."""
        again, self._again = self._again, []
        held, self._held = self._held or [], None
        loop = asyncio.get_running_loop()
        if again:
            for script in self.scripts:
                self._send(conn, _Call(None, pack("SCRIPT", "LOAD", script.source), (), loop.create_future()))
        for call in again + held:
            self._send(conn, call)

    def _replied(self, conn: _Connection, call: _Call, reply: Any) -> None:
        if isinstance(reply, hiredis.ReplyError):
            reply = _error(str(reply))
        if isinstance(reply, NoScriptError) and call.script is not None and not call.retried:
            call.retried = True
            self._again.append(call)
            if self._held is None:
                self._held = []
        else:
            self._settle(call, reply)
        if self._held is not None and self._connecting is None and not conn.sent and conn is self._conn:
            self._release(conn)

    @staticmethod
    def _settle(call: _Call, reply: Any) -> None:
        if call.script is not None and call.script.on_reply is not None:
            try:
                call.script.on_reply(call.args, reply)
            except Exception:
                # the caller still gets its reply
                log.exception("a script's reply could not be handed over")
        if call.future.done():
            return
        if isinstance(reply, Exception):
            call.future.set_exception(reply)
        else:
            call.future.set_result(reply)

    def _lost(self, conn: _Connection, exc: Exception | None) -> None:
        failure = RedisConnectionError(f"the scripts' connection to Redis was lost{f': {exc}' if exc else ''}")
        if conn is self._conn:
            self._conn = None
        while conn.sent:
            self._settle(conn.sent.popleft(), failure)
        if self._connecting is None:
            self._fail_held(failure)

    def _fail_held(self, failure: Exception) -> None:
        again, self._again = self._again, []
        held, self._held = self._held or [], None
        for call in again + held:
            self._settle(call, failure)

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.close()
        self._fail_held(RedisConnectionError("the scripts' connection to Redis was closed"))


class PipedScript:
    """A Lua script called through a ScriptPipe: `await script(keys, args)`."""

    def __init__(self, pipe: ScriptPipe, source: str, on_reply: OnReply | None):
        self.pipe, self.source, self.on_reply = pipe, source, on_reply
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # what Redis knows it by

    async def __call__(self, keys: Sequence[Any], args: Sequence[Any] = ()) -> Any:
        return await self.pipe.call(self, keys, args)
