"""PostgreSQL or Redis unreachable: `503 service_unavailable`, and one log
line when an outage starts and one when it ends.

Whoever meets a connection failure reports it here instead of logging a
traceback. The first report of a service starts its outage (one warning)
and a probe that asks the service every PROBE_SECONDS on a connection of
its own; the first answer ends the outage (one line), after the database
pool has dropped the connections the outage broke. Nothing needs a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import psycopg2
import redis.asyncio as redis_async
from aiohttp import web

log = logging.getLogger(__name__)

POSTGRES, REDIS = "PostgreSQL", "Redis"
PROBE_SECONDS = 1.0
# what a client is told to wait before trying again, in seconds
RETRY_AFTER = 5


def service_of(exc: BaseException) -> str | None:
    """Which server's absence `exc` means, or None when it means something else."""
    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return POSTGRES
    if isinstance(exc, (redis_async.ConnectionError, redis_async.TimeoutError)):
        return REDIS
    return None


class Outages:
    """The services currently unreachable, each with its probe."""

    # a probe's answer is ignored: reaching the service without an error is enough
    def __init__(self, probes: dict[str, Callable[[], Awaitable[object]]],
                 recovered: dict[str, Callable[[], Awaitable[None]]] | None = None):
        self.probes = probes
        self.recovered = recovered or {}
        self.down: dict[str, float] = {}
        self.refused: dict[str, int] = {}
        self._probing: dict[str, asyncio.Task] = {}

    def report(self, service: str, exc: BaseException) -> None:
        """`service` failed a caller; the first report of an outage logs it."""
        self.refused[service] = self.refused.get(service, 0) + 1
        if service in self.down:
            return
        self.down[service] = time.monotonic()
        log.warning("%s is unreachable (%s: %s); answering 503 until it is back",
                    service, exc.__class__.__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        self._probing[service] = asyncio.get_running_loop().create_task(self._probe(service))

    async def _probe(self, service: str) -> None:
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            try:
                await asyncio.wait_for(self.probes[service](), PROBE_SECONDS * 5)
            except Exception:  # noqa: BLE001, S112 - any failure means still down; logged once already
                continue
            with contextlib.suppress(Exception):
                if service in self.recovered:
                    await self.recovered[service]()
            began = self.down.pop(service)
            log.warning("%s is reachable again after %.1f s (%d request(s) answered 503)",
                        service, time.monotonic() - began, self.refused.pop(service, 0))
            self._probing.pop(service, None)
            return

    async def close(self) -> None:
        for task in self._probing.values():
            task.cancel()
        await asyncio.gather(*self._probing.values(), return_exceptions=True)


OUTAGES = web.AppKey("outages", Outages)


def report(app: web.Application, exc: BaseException) -> bool:
    """Report `exc` if it is an outage; whether it was one."""
    service = service_of(exc)
    if service is None:
        return False
    outages = app.get(OUTAGES)
    if outages is not None:
        outages.report(service, exc)
    return True
