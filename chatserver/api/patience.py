"""Giving up on waits that last too long, with one timer for all of them.

asyncio.timeout arms and disarms a timer for each wait, which cost an AI
callback (callback_routes.py) more than reading its JSON. The callbacks all
wait for Redis the same time, so their waits expire in the order they began:
one check, due when the oldest expires and running only while something
waits, gives up on each wait past its time. A wait ends with TimeoutError
between `seconds` and `seconds + tick` after it began; a cancellation from
elsewhere stays a CancelledError, as with asyncio.timeout.
"""

from __future__ import annotations

import asyncio
import collections
from types import TracebackType


class Wait:
    __slots__ = ("task", "expires", "cancelling", "expired")

    def __init__(self, task: asyncio.Task, expires: float) -> None:
        self.task: asyncio.Task | None = task
        self.expires = expires
        self.cancelling = task.cancelling()
        self.expired = False

    def __enter__(self) -> Wait:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        task, self.task = self.task, None
        if self.expired and task is not None and task.uncancel() <= self.cancelling \
                and kind is asyncio.CancelledError:
            raise TimeoutError from exc


class Patience:
    def __init__(self, seconds: float, tick: float) -> None:
        self.seconds = seconds
        self.tick = tick
        self._waits: collections.deque[Wait] = collections.deque()
        self._check_due: asyncio.TimerHandle | None = None

    def wait(self) -> Wait:
        """A context for the current task's wait: TimeoutError once it lasts too long."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        waits = self._waits
        while waits and waits[0].task is None:  # ended in time
            waits.popleft()
        wait = Wait(task, loop.time() + self.seconds)
        waits.append(wait)
        if self._check_due is None:
            self._check_due = loop.call_at(wait.expires, self._check)
        return wait

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        waits = self._waits
        while waits and (waits[0].task is None or waits[0].expires <= now):
            wait = waits.popleft()
            if wait.task is not None:
                wait.expired = True
                wait.task.cancel()
        self._check_due = loop.call_at(max(waits[0].expires, now + self.tick), self._check) if waits else None
