"""What a job table declares (chatserver/job_table.py holds the server's):
the kinds of job, the periodic tasks, and how many of each queue's jobs run
at once in one process. Each function gets the application first."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from chatserver.jobs.queue import Job

# a coroutine, not any awaitable: each run is a task of its own
Run = Callable[[web.Application, Job], Coroutine[Any, Any, None]]
# told the job and why it was given up, before it goes to the dead letters
OnDead = Callable[[web.Application, Job, str], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Task:
    """A kind of job: its name, the queue it waits in, the function that runs
    it, what to do when it is given up, and its own time limit (None: the
    worker's default)."""
    name: str
    queue: str
    run: Run
    on_dead: OnDead | None = None
    timeout: float | None = None


@dataclasses.dataclass(frozen=True)
class Periodic:
    """A function run about once per `every` seconds across every process sharing the Redis."""
    name: str
    every: float
    run: Callable[[web.Application], Awaitable[object]]


@dataclasses.dataclass(frozen=True)
class JobTable:
    concurrency: dict[str, int]
    tasks: list[Task]
    periodic: list[Periodic]

    @property
    def routes(self) -> dict[str, str]:
        """The queue of each kind of job."""
        return {task.name: task.queue for task in self.tasks}
