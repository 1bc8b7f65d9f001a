"""The worker: one asyncio loop per queue takes its jobs and runs each as a
task of its own, up to the queue's concurrency; failures are retried with
backoff, what keeps failing is buried; it keeps the process's lease alive and
runs the periodic tasks.

A queue's loop takes a job only while one of its slots is free, so however
many jobs run at once, each queue holds one blocking Redis call (not one per
slot) and a full queue holds none.

Each job runs under its task's time limit (as saq does, a wait around the
job); one past it is cancelled and counts as a failed attempt. A job that
ignores its cancellation is abandoned, never waited for: neither the worker
nor shutdown is held up by it beyond the grace period. A job's end (finished,
retried, buried) that cannot be recorded while Redis is unreachable is
recorded once it is back.

Stopping is in two steps: `stopping()` (at the signal, from an on_shutdown
hook) stops taking jobs and says how many it waits for and how long at most;
`stop()` (at cleanup) waits for them until then and puts back what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as redis_async
from aiohttp import web

from chatserver.jobs.queue import Job, JobQueue
from chatserver.jobs.tasks import JobTable, Periodic, Task

log = logging.getLogger(__name__)

# how long a cancelled job gets to unwind before it is abandoned
CANCEL_WAIT_SECONDS = 1.0
# how often a job's end is tried again while Redis is unreachable
RECORD_AGAIN_SECONDS = 1.0
REDIS_DOWN = (redis_async.ConnectionError, redis_async.TimeoutError)

# records how a job ended: finished, retried or buried
End = Callable[[], Awaitable[None]]


def backoff_delay(attempt: int, base: float) -> float:
    """Exponential backoff with jitter: about base, 2*base, 4*base, ..."""
    return base * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        table: JobTable,
        app: web.Application,
        *,
        max_attempts: int = 4,
        retry_base: float = 1.0,
        grace_seconds: float = 20,
        poll_seconds: float = 1.0,
        job_timeout: float = 600,
        sweep_seconds: float = 60,
        outage: Callable[[BaseException], bool] | None = None,
    ):
        unknown = [q for q in queue.queues if q not in table.concurrency]
        if unknown:
            raise ValueError(f"no concurrency for queue(s) {unknown}")
        self.queue = queue
        self.app = app
        self.tasks = {task.name: task for task in table.tasks}
        self.concurrency = {name: table.concurrency[name] for name in queue.queues}
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self.job_timeout = job_timeout
        # reports an unreachable server (logged once per outage elsewhere);
        # says whether `exc` was one, so it is not logged again here
        self._outage = outage or (lambda exc: False)
        # putting back the jobs of dead processes is periodic work like any other
        self._periodic = [Periodic("sweep", sweep_seconds, lambda app: queue.sweep()), *table.periodic]
        self._takers: list[asyncio.Task] = []
        self._background: list[asyncio.Task] = []
        # each queue's jobs running now, and the event its loop waits on while all its slots are taken
        self._running: dict[str, set[asyncio.Task]] = {name: set() for name in self.concurrency}
        self._freed = {name: asyncio.Event() for name in self.concurrency}
        self._abandoned: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        self._deadline = 0.0

    # -- lifetime -------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self._background)

    @property
    def running(self) -> int:
        """Jobs this process runs now."""
        return sum(map(len, self._running.values()))

    async def start(self) -> None:
        await self.queue.join()
        await self.queue.sweep()
        self._takers = [asyncio.create_task(self._take(queue)) for queue in self.concurrency]
        self._background.append(asyncio.create_task(self._upkeep()))
        self._background += [asyncio.create_task(self._run_periodic(p)) for p in self._periodic]
        log.info("job queue started (instance %s, %s)", self.queue.instance,
                 ", ".join(f"{q}={n}" for q, n in self.concurrency.items()))

    def stopping(self) -> None:
        """Take no more jobs; the running ones get the grace period from now."""
        if self._stopping.is_set() or not self.started:
            return
        self._stopping.set()
        for freed in self._freed.values():
            freed.set()  # a loop waiting for a free slot ends now
        self._deadline = time.monotonic() + self.grace_seconds
        # with none running, nothing here waits: "job queue stopped" follows
        if self.running:
            log.info("job queue stopping: waiting for %d running job(s), %g s at most; queued jobs stay queued",
                     self.running, self.grace_seconds)

    async def stop(self) -> None:
        """Let running jobs finish within the grace period, and leave every
        unfinished job queued for another process."""
        self.stopping()
        # loops end at their next check of _stopping; cancelling them instead
        # could be swallowed inside a Redis call
        await asyncio.gather(*self._background, return_exceptions=True)
        # no job starts once _stopping is set, so these are all there will be
        jobs = {job for running in self._running.values() for job in running}
        if self._takers or jobs:
            _, late = await asyncio.wait({*self._takers, *jobs},
                                         timeout=max(0.0, self._deadline - time.monotonic()))
            for task in late:
                task.cancel()
            if late:
                # a job ends at once when cancelled (it abandons a run that ignores it), so this wait is short
                await asyncio.wait(late, timeout=CANCEL_WAIT_SECONDS)
            if late & jobs:
                log.warning("%d job(s) did not finish within the grace period; requeued", len(late & jobs))
        try:
            await self.queue.leave()
        except REDIS_DOWN as exc:
            # our heartbeat will expire and another process's sweep requeues our jobs
            log.warning("job queue stopped without Redis (%s); jobs are recovered by the sweep", exc)
            return
        log.info("job queue stopped")

    # -- working --------------------------------------------------------

    async def _take(self, queue: str) -> None:
        """Take the queue's jobs while one of its slots is free, each to run in a task of its own."""
        running, freed = self._running[queue], self._freed[queue]
        while not self._stopping.is_set():
            free = self.concurrency[queue] - len(running)
            if free <= 0:
                freed.clear()
                await freed.wait()
                continue
            try:
                # what waits now in one round trip (many arrive at once), else wait for the next one
                taken = await self.queue.take_waiting(queue, free)
                if not taken:
                    raw = await self.queue.take(queue, self.poll_seconds)
                    taken = [raw] if raw is not None else []
            except REDIS_DOWN as exc:
                if not self._outage(exc):
                    log.warning("queue %s: Redis unavailable (%s); retrying", queue, exc)
                await self._sleep(1)
                continue
            # jobs taken as the stop began stay in the active list: leave() puts them back
            if self._stopping.is_set():
                return
            for raw in taken:
                job = asyncio.create_task(self._run(queue, raw))
                running.add(job)
                job.add_done_callback(functools.partial(self._ended, queue))

    def _ended(self, queue: str, job: asyncio.Task) -> None:
        self._running[queue].discard(job)
        self._freed[queue].set()
        if not job.cancelled() and job.exception() is not None:
            # the job stays in this process's active list: leave() puts it back at the stop
            log.error("queue %s: the end of a job could not be recorded: %r", queue, job.exception())

    async def _run(self, queue: str, raw: str) -> None:
        end = await self._handle(queue, raw)
        warned = False
        while True:
            try:
                return await end()
            except REDIS_DOWN as exc:
                # every end is recorded at most once however often it is tried (queue.py), and
                # until it is, the job stays in this process's active list, holding its slot
                if not self._outage(exc) and not warned:
                    log.warning("queue %s: Redis unavailable while ending a job (%s); trying again", queue, exc)
                warned = True
            await asyncio.sleep(RECORD_AGAIN_SECONDS)

    async def _handle(self, queue: str, raw: str) -> End:
        """Run the job; what records how it ended."""
        try:
            job = Job.loads(raw)
            task = self.tasks[job.name]
        except (ValueError, TypeError, KeyError) as exc:
            log.error("queue %s: dropping unreadable job %r (%s)", queue, raw[:200], exc)
            return functools.partial(self.queue.bury, queue, raw, f"unreadable job: {exc}", failed=False)
        if job.attempts >= self.max_attempts:
            # only a requeue after a process died brings a job here so worn out
            return await self._bury(queue, raw, task, job, f"gave up after {job.attempts} attempts; the process "
                                    f"running it stopped mid-run {job.interrupted} time(s)", failed=False)
        started = time.monotonic()
        try:
            await self._bounded(task, job)
        except Exception as exc:
            outage = self._outage(exc)
            log.warning("job %s %s attempt %d failed: %r", job.name, job.id, job.attempts + 1, exc,
                        exc_info=not (outage or isinstance(exc, (OSError, asyncio.TimeoutError))))
            job.attempts += 1
            if job.attempts >= self.max_attempts:
                return await self._bury(queue, raw, task, job, str(exc) or exc.__class__.__name__, failed=True)
            return functools.partial(self.queue.retry, queue, raw, job, backoff_delay(job.attempts, self.retry_base))
        log.info("job %s %s done in %.0f ms", job.name, job.id, (time.monotonic() - started) * 1000)
        return functools.partial(self.queue.finish, queue, raw)

    async def _bounded(self, task: Task, job: Job) -> None:
        """Run the job within its task's time limit. A job that outlives the
        limit, or whose loop is cancelled, is cancelled; if it ignores that
        for CANCEL_WAIT_SECONDS it is left to itself, and never awaited again."""
        timeout = task.timeout or self.job_timeout
        run = asyncio.create_task(task.run(self.app, job))
        try:
            done, _ = await asyncio.wait({run}, timeout=timeout)
        except asyncio.CancelledError:
            self._abandon(run, job)
            raise
        if done:
            if run.cancelled():
                raise RuntimeError("the job cancelled itself")
            return run.result()
        self._abandon(run, job)
        await asyncio.wait({run}, timeout=CANCEL_WAIT_SECONDS)
        raise TimeoutError(f"the job ran past its time limit of {timeout:g} s")

    def _abandon(self, run: asyncio.Task, job: Job) -> None:
        run.cancel()
        self._abandoned.add(run)

        def forget(done: asyncio.Task) -> None:
            self._abandoned.discard(done)
            if not done.cancelled() and done.exception() is not None:
                log.warning("job %s %s failed after it was cancelled: %r", job.name, job.id, done.exception())

        run.add_done_callback(forget)

    async def _bury(self, queue: str, raw: str, task: Task, job: Job, reason: str, *, failed: bool) -> End:
        log.error("job %s dead-lettered: %s", job.id, reason)
        # on_dead runs while the job is still active, so wait_idle() also waits for it
        if task.on_dead:
            try:
                await task.on_dead(self.app, job, reason)
            except Exception:
                log.exception("on_dead of job %s failed", job.id)
        return functools.partial(self.queue.bury, queue, raw, reason, failed=failed)

    # -- keeping things moving -----------------------------------------

    async def _upkeep(self) -> None:
        """Renew the lease, and put due retries back on their queues."""
        renew_every = self.queue.lease_seconds / 3
        last_renewed = time.monotonic()
        while not self._stopping.is_set():
            try:
                if time.monotonic() - last_renewed >= renew_every:
                    await self.queue.renew()
                    last_renewed = time.monotonic()
                await self.queue.move_due()
            except REDIS_DOWN as exc:
                if not self._outage(exc):
                    log.warning("queue housekeeping: Redis unavailable (%s)", exc)
            await self._sleep(min(0.2, self.retry_base / 2))

    async def _run_periodic(self, periodic: Periodic) -> None:
        while not self._stopping.is_set():
            try:
                if await self.queue.hold_lock(periodic.name, periodic.every):
                    await periodic.run(self.app)
            except Exception as exc:
                if not self._outage(exc):
                    log.exception("periodic task %s failed", periodic.name)
            await self._sleep(periodic.every)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
