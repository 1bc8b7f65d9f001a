"""Every open WebSocket of the process, and the one heartbeat that finds dead peers.

aiohttp's per-socket `heartbeat=` keeps a timer for the next ping and,
between ping and pong, another for the pong, each with its callback: about
1 KB per socket, times thousands of idle sockets. Here one task does the
same for all of them: every `WS_HEARTBEAT_SECONDS` it sends each open
socket a protocol-level ping, and
half an interval later closes (code 1011) each socket that has sent nothing
since, neither the pong nor any other frame. So the answer to a ping is due
within half an interval, as with aiohttp's heartbeat, and a peer that went
silent is closed at most 1.5 intervals after its last frame.

The sockets are made with `autoping=False`: their receive loops hand every
frame to `OpenSockets.heard`, which answers the client's pings and notes the
sign of life. The set also serves the shutdown (`close_all`: 1001 to each).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable

from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from chatserver import appkeys

log = logging.getLogger(__name__)

# pings go out in groups, each group's sends awaited together: a socket whose
# writes wait for a stalled peer holds up nothing (it is closed as silent)
PING_GROUP = 500
SILENT = b"no answer to the ping"
CLOSE_SECONDS = 5


class OpenSockets:
    def __init__(self, interval: float):
        self.interval = interval
        self.every: set[web.WebSocketResponse] = set()
        # pinged, and nothing heard since
        self.unanswered: set[web.WebSocketResponse] = set()
        # pings and closes still under way, held until done (the loop keeps only weak references)
        self.pending: set[asyncio.Task] = set()

    def add(self, ws: web.WebSocketResponse) -> None:
        self.every.add(ws)

    def discard(self, ws: web.WebSocketResponse) -> None:
        self.every.discard(ws)
        self.unanswered.discard(ws)

    async def heard(self, ws: web.WebSocketResponse, message: WSMessage) -> bool:
        """Note a frame from the peer; True when it was a ping or a pong (answered here, nothing more to do)."""
        self.unanswered.discard(ws)
        if message.type == WSMsgType.PING:
            await ws.pong(message.data)
            return True
        return message.type == WSMsgType.PONG

    async def beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval / 2)
            self.close_silent()
            await asyncio.sleep(self.interval / 2)
            await self.ping_all()

    async def ping_all(self) -> None:
        sockets = list(self.every)
        self.unanswered = set(sockets)
        for start in range(0, len(sockets), PING_GROUP):
            tasks = [asyncio.create_task(_ping(ws)) for ws in sockets[start:start + PING_GROUP]]
            _, slow = await asyncio.wait(tasks, timeout=1)
            self._hold(slow)

    def close_silent(self) -> None:
        silent, self.unanswered = self.unanswered, set()
        if silent:
            log.info("closing %d WebSocket(s) that did not answer the ping", len(silent))
        self._hold(asyncio.create_task(_close(ws, WSCloseCode.INTERNAL_ERROR, SILENT)) for ws in silent)

    async def close_all(self) -> None:
        """At the signal: every open socket is told to go (1001) and reconnect elsewhere."""
        sockets = list(self.every)
        if sockets:
            log.info("closing %d open WebSocket(s)", len(sockets))
            await asyncio.gather(*(_close(ws, WSCloseCode.GOING_AWAY, b"server shutdown") for ws in sockets),
                                 return_exceptions=True)

    def _hold(self, tasks: Iterable[asyncio.Task]) -> None:
        for task in tasks:
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)


async def _ping(ws: web.WebSocketResponse) -> None:
    try:
        await ws.ping()
    except (ConnectionError, RuntimeError):
        pass  # closing already


async def _close(ws: web.WebSocketResponse, code: int, reason: bytes) -> None:
    # a silent peer may never read what is buffered for it: no drain, and a
    # close frame stuck behind that buffer gives up (aiohttp then drops the
    # connection)
    try:
        async with asyncio.timeout(CLOSE_SECONDS):
            await ws.close(code=code, message=reason, drain=False)
    except (ConnectionError, RuntimeError, TimeoutError):
        pass


OPEN_SOCKETS: web.AppKey[OpenSockets] = web.AppKey("open_sockets", OpenSockets)


async def open_sockets_ctx(app: web.Application) -> AsyncIterator[None]:
    sockets = app[OPEN_SOCKETS] = OpenSockets(app[appkeys.SETTINGS].WS_HEARTBEAT_SECONDS)
    beat = asyncio.create_task(sockets.beat())
    yield
    beat.cancel()
    await asyncio.gather(beat, *sockets.pending, return_exceptions=True)


async def close_sockets(app: web.Application) -> None:
    """On shutdown: open sockets would hold it until the grace period ends."""
    await app[OPEN_SOCKETS].close_all()
