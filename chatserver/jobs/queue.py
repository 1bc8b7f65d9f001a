"""The job queue: Redis lists worked by in-process asyncio workers.

Delivery is at-least-once. A worker takes a job with BLMOVE from the queue
list into its own process's active list and removes it from there only once
the job is handled (done, rescheduled or dead-lettered), in one MULTI. Each
process keeps a heartbeat key alive; the sweep puts back the active jobs of
processes whose heartbeat expired, counting the interrupted run as an
attempt, so a job that keeps killing or outliving its process is
dead-lettered like one that keeps failing. Retries wait in a sorted set
scored by due time and are moved back to their queue by a small Lua script.

Each job runs under its task's time limit (as saq does, a wait around the
job); one past it is cancelled and counts as a failed attempt. A job that
ignores its cancellation is abandoned, never waited for: neither the worker
nor shutdown is held up by it beyond the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

import redis.asyncio as redis_async

from chatserver.redis_keys import Keys

log = logging.getLogger(__name__)

# a coroutine, not any awaitable: each run is a task of its own
Handler = Callable[["Job"], Coroutine[Any, Any, None]]
DeadHandler = Callable[["Job", str], Awaitable[None]]

# Moves due retries back to their queues; atomic so a job is never in both.
# KEYS[1] is the delayed set, KEYS[i] (i >= 2) the queue named ARGV[i].
_MOVE_DUE = """
local target = {}
for i = 2, #ARGV do target[ARGV[i]] = KEYS[i] end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
local moved = 0
for _, raw in ipairs(due) do
  local key = target[cjson.decode(raw).queue]
  if key then
    redis.call('LPUSH', key, raw)
    redis.call('ZREM', KEYS[1], raw)
    moved = moved + 1
  end
end
return moved
"""


# A dead process's active jobs go back to their queue, each counted as an
# attempt (its run was interrupted). KEYS[1] is the active list, KEYS[2] the queue.
_REQUEUE_INTERRUPTED = """
local moved = 0
while true do
  local raw = redis.call('RPOP', KEYS[1])
  if not raw then break end
  local ok, job = pcall(cjson.decode, raw)
  if ok and type(job) == 'table' then
    job.attempts = (tonumber(job.attempts) or 0) + 1
    job.interrupted = (tonumber(job.interrupted) or 0) + 1
    raw = cjson.encode(job)
  end
  redis.call('RPUSH', KEYS[2], raw)
  moved = moved + 1
end
return moved
"""

# how long a cancelled job gets to unwind before it is abandoned
CANCEL_WAIT_SECONDS = 1.0


@dataclasses.dataclass
class Job:
    id: str
    queue: str
    name: str
    payload: dict
    attempts: int = 0
    # runs cut short by the death of the process running them
    interrupted: int = 0

    def dumps(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str) -> Job:
        fields = json.loads(raw)
        # Lua's cjson writes an empty object as []
        fields["payload"] = fields.get("payload") or {}
        return cls(**fields)


@dataclasses.dataclass
class Task:
    name: str
    queue: str
    handler: Handler
    on_dead: DeadHandler | None
    timeout: float


@dataclasses.dataclass
class QueueStats:
    processed: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0


def backoff_delay(attempt: int, base: float) -> float:
    """Exponential backoff with jitter: about base, 2*base, 4*base, ..."""
    return base * (2 ** (attempt - 1)) * random.uniform(0.8, 1.2)


class JobQueue:
    def __init__(
        self,
        redis: redis_async.Redis,
        keys: Keys,
        concurrency: dict[str, int],
        *,
        max_attempts: int = 4,
        retry_base: float = 1.0,
        lease_seconds: float = 30,
        grace_seconds: float = 20,
        poll_seconds: float = 1.0,
        job_timeout: float = 600,
        outage: Callable[[BaseException], bool] | None = None,
    ):
        self.redis = redis
        self.keys = keys
        self.concurrency = dict(concurrency)
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self.lease_seconds = lease_seconds
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self.job_timeout = job_timeout
        # reports an unreachable server (logged once per outage elsewhere);
        # says whether `exc` was one, so it is not logged again here
        self._outage = outage or (lambda exc: False)
        self.instance = uuid.uuid4().hex
        self.tasks: dict[str, Task] = {}
        self.stats = {name: QueueStats() for name in self.concurrency}
        self._periodic: list[tuple[str, float, Callable[[], Awaitable[object]]]] = []
        self._workers: list[asyncio.Task] = []
        self._background: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        self._move_due = redis.register_script(_MOVE_DUE)
        self._requeue_interrupted = redis.register_script(_REQUEUE_INTERRUPTED)
        self._abandoned: set[asyncio.Task] = set()

    # -- declaring work -------------------------------------------------

    def task(self, name: str, queue: str, handler: Handler, on_dead: DeadHandler | None = None, *,
             timeout: float | None = None) -> None:
        """Declare a task; a run longer than `timeout` (default: the queue's
        job_timeout) is cancelled and counts as a failed attempt."""
        if queue not in self.concurrency:
            raise ValueError(f"unknown queue {queue!r}")
        self.tasks[name] = Task(name, queue, handler, on_dead, timeout or self.job_timeout)

    def periodic(self, name: str, interval: float, fn: Callable[[], Awaitable[object]]) -> None:
        """Run fn about once per interval across every process sharing this Redis."""
        self._periodic.append((name, interval, fn))

    async def enqueue(self, name: str, payload: dict) -> Job:
        job = Job(id=uuid.uuid4().hex, queue=self.tasks[name].queue, name=name, payload=payload)
        await self.redis.lpush(self.keys.queue(job.queue), job.dumps())
        return job

    # -- lifetime -------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(self._background)

    async def start(self) -> None:
        await self._beat()
        await self.redis.sadd(self.keys.instances, self.instance)
        await self.sweep()
        for queue, count in self.concurrency.items():
            for _ in range(count):
                self._workers.append(asyncio.create_task(self._work(queue)))
        self._background.append(asyncio.create_task(self._housekeeping()))
        for name, interval, fn in self._periodic:
            self._background.append(asyncio.create_task(self._run_periodic(name, interval, fn)))
        log.info("job queue started (instance %s, %s)", self.instance,
                 ", ".join(f"{q}={n}" for q, n in self.concurrency.items()))

    async def stop(self) -> None:
        """Stop taking jobs, let running ones finish within the grace period,
        and leave every unfinished job queued for another process."""
        self._stopping.set()
        # loops end at their next check of _stopping; cancelling them instead
        # could be swallowed inside a Redis call
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._workers:
            _, late = await asyncio.wait(self._workers, timeout=self.grace_seconds)
            for task in late:
                task.cancel()
            # a worker ends at once when cancelled (it abandons a job that
            # ignores it), so this wait is short
            await asyncio.wait(self._workers, timeout=CANCEL_WAIT_SECONDS)
            if late:
                log.warning("%d job(s) did not finish within the grace period; requeued", len(late))
        try:
            await self._requeue_active(self.instance)
            await self.redis.srem(self.keys.instances, self.instance)
            await self.redis.delete(self.keys.heartbeat(self.instance))
        except (redis_async.ConnectionError, redis_async.TimeoutError) as exc:
            # our heartbeat will expire and another process's sweep requeues our jobs
            log.warning("job queue stopped without Redis (%s); jobs are recovered by the sweep", exc)
            return
        log.info("job queue stopped")

    # -- working --------------------------------------------------------

    async def _work(self, queue: str) -> None:
        source, active = self.keys.queue(queue), self.keys.active(queue, self.instance)
        while not self._stopping.is_set():
            try:
                # redis-py types the timeout as int; Redis takes fractions of a second
                raw = await self.redis.blmove(source, active, self.poll_seconds, "RIGHT", "LEFT")  # type: ignore[arg-type]
            except (redis_async.ConnectionError, redis_async.TimeoutError) as exc:
                if not self._outage(exc):
                    log.warning("queue %s: Redis unavailable (%s); retrying", queue, exc)
                await self._sleep(1)
                continue
            if raw is not None:
                # the client decodes replies (decode_responses=True)
                await self._run(queue, active, cast(str, raw))

    async def _run(self, queue: str, active: str, raw: str) -> None:
        try:
            job = Job.loads(raw)
            task = self.tasks[job.name]
        except (ValueError, TypeError, KeyError) as exc:
            log.error("queue %s: dropping unreadable job %r (%s)", queue, raw[:200], exc)
            await self._dead_letter(queue, active, raw, None, f"unreadable job: {exc}")
            return
        if job.attempts >= self.max_attempts:
            # only a requeue after a process died brings a job here so worn out
            await self._dead_letter(queue, active, raw, job,
                                    f"gave up after {job.attempts} attempts; the process running it "
                                    f"stopped mid-run {job.interrupted} time(s)")
            return
        started = time.monotonic()
        try:
            await self._bounded(task, job)
        except Exception as exc:
            outage = self._outage(exc)
            log.warning("job %s %s attempt %d failed: %r", job.name, job.id, job.attempts + 1, exc,
                        exc_info=not (outage or isinstance(exc, (OSError, asyncio.TimeoutError))))
            await self._retry_or_bury(queue, active, raw, job, exc)
        else:
            await self.redis.lrem(active, 1, raw)
            self.stats[queue].processed += 1
            log.info("job %s %s done in %.0f ms", job.name, job.id, (time.monotonic() - started) * 1000)

    async def _bounded(self, task: Task, job: Job) -> None:
        """Run the job within its task's time limit. A job that outlives the
        limit, or whose worker is cancelled, is cancelled; if it ignores that
        for CANCEL_WAIT_SECONDS it is left to itself, and never awaited again."""
        run = asyncio.create_task(task.handler(job))
        try:
            done, _ = await asyncio.wait({run}, timeout=task.timeout)
        except asyncio.CancelledError:
            self._abandon(run, job)
            raise
        if done:
            if run.cancelled():
                raise RuntimeError("the job cancelled itself")
            return run.result()
        self._abandon(run, job)
        await asyncio.wait({run}, timeout=CANCEL_WAIT_SECONDS)
        raise TimeoutError(f"the job ran past its time limit of {task.timeout:g} s")

    def _abandon(self, run: asyncio.Task, job: Job) -> None:
        run.cancel()
        self._abandoned.add(run)

        def forget(done: asyncio.Task) -> None:
            self._abandoned.discard(done)
            if not done.cancelled() and done.exception() is not None:
                log.warning("job %s %s failed after it was cancelled: %r", job.name, job.id, done.exception())

        run.add_done_callback(forget)

    async def _retry_or_bury(self, queue: str, active: str, raw: str, job: Job, exc: Exception) -> None:
        self.stats[queue].failed += 1
        job.attempts += 1
        if job.attempts >= self.max_attempts:
            await self._dead_letter(queue, active, raw, job, _reason(exc))
            return
        due = time.time() + backoff_delay(job.attempts, self.retry_base)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(active, 1, raw)
            pipe.zadd(self.keys.delayed, {job.dumps(): due})
            await pipe.execute()
        self.stats[queue].retried += 1

    async def _dead_letter(self, queue: str, active: str, raw: str, job: Job | None, reason: str) -> None:
        log.error("job %s dead-lettered: %s", job.id if job else "?", reason)
        # on_dead runs while the job is still active, so wait_idle() also waits for it
        task = self.tasks.get(job.name) if job else None
        if job and task and task.on_dead:
            try:
                await task.on_dead(job, reason)
            except Exception:
                log.exception("on_dead of job %s failed", job.id)
        entry = json.dumps({"job": raw, "error": reason, "failed_at": time.time()})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrem(active, 1, raw)
            pipe.lpush(self.keys.dead, entry)
            await pipe.execute()
        self.stats[queue].dead += 1

    # -- keeping things moving -----------------------------------------

    async def _beat(self) -> None:
        await self.redis.set(self.keys.heartbeat(self.instance), "1", px=int(self.lease_seconds * 1000))

    async def move_due(self) -> int:
        """Put retries whose time has come back on their queues."""
        names = list(self.concurrency)
        return await self._move_due(keys=[self.keys.delayed, *map(self.keys.queue, names)],
                                    args=[time.time(), *names])

    async def is_alive(self, instance: str) -> bool:
        """Whether the process `instance` still keeps its heartbeat (holds its jobs)."""
        return bool(await self.redis.exists(self.keys.heartbeat(instance)))

    async def _housekeeping(self) -> None:
        beat_every = self.lease_seconds / 3
        last_beat = time.monotonic()
        while not self._stopping.is_set():
            try:
                if time.monotonic() - last_beat >= beat_every:
                    await self._beat()
                    last_beat = time.monotonic()
                await self.move_due()
            except (redis_async.ConnectionError, redis_async.TimeoutError) as exc:
                if not self._outage(exc):
                    log.warning("queue housekeeping: Redis unavailable (%s)", exc)
            await self._sleep(min(0.2, self.retry_base / 2))

    async def sweep(self) -> int:
        """Put back the active jobs of every process whose heartbeat expired."""
        moved = 0
        for instance in cast(set[str], await self.redis.smembers(self.keys.instances)):
            if instance == self.instance or await self.redis.exists(self.keys.heartbeat(instance)):
                continue
            count = await self._requeue_active(instance, interrupted=True)
            await self.redis.srem(self.keys.instances, instance)
            if count:
                log.warning("requeued %d job(s) held by dead process %s", count, instance)
            moved += count
        return moved

    async def _requeue_active(self, instance: str, *, interrupted: bool = False) -> int:
        """Put an instance's active jobs back on their queues; `interrupted`
        (its process died) counts each as an attempt. The RIGHT end of a
        queue is taken next, so recovered jobs run first."""
        moved = 0
        for queue in self.concurrency:
            active, target = self.keys.active(queue, instance), self.keys.queue(queue)
            if interrupted:
                moved += await self._requeue_interrupted(keys=[active, target])
                continue
            while await self.redis.lmove(active, target, "RIGHT", "RIGHT"):
                moved += 1
        return moved

    async def _run_periodic(self, name: str, interval: float, fn: Callable[[], Awaitable[object]]) -> None:
        while not self._stopping.is_set():
            try:
                if await self.redis.set(self.keys.lock(name), self.instance, nx=True, px=int(interval * 1000)):
                    await fn()
            except Exception as exc:
                if not self._outage(exc):
                    log.exception("periodic task %s failed", name)
            await self._sleep(interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # -- observing ------------------------------------------------------

    async def depths(self) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in self.concurrency:
                pipe.llen(self.keys.queue(queue))
            pipe.zcard(self.keys.delayed)
            pipe.llen(self.keys.dead)
            values = await pipe.execute()
        *queued, delayed, dead = values
        depths = dict(zip(self.concurrency, queued, strict=True))
        depths["delayed"], depths["dead"] = delayed, dead
        return depths

    async def payloads(self, name: str) -> list[dict]:
        """Payloads of every job of this task that is queued, delayed or
        running anywhere, so a sweep can tell a lost job from a slow one."""
        queue = self.tasks[name].queue
        instances = cast(set[str], await self.redis.smembers(self.keys.instances))
        # one MULTI, so a job moving between lists meanwhile is seen exactly once
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lrange(self.keys.queue(queue), 0, -1)
            pipe.zrange(self.keys.delayed, 0, -1)
            for instance in instances:
                pipe.lrange(self.keys.active(queue, instance), 0, -1)
            lists = await pipe.execute()
        found = []
        for raw in (raw for listed in lists for raw in listed):
            try:
                job = Job.loads(raw)
            except (ValueError, TypeError):
                continue
            if job.name == name:
                found.append(job.payload)
        return found

    async def wait_idle(self, timeout: float = 30) -> None:
        """Wait until no job is queued, delayed or running anywhere (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while True:
            # one MULTI: read one by one, a job moving from active to delayed
            # between two reads would be seen in neither
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zcard(self.keys.delayed)
                for queue in self.concurrency:
                    pipe.llen(self.keys.queue(queue))
                    pipe.llen(self.keys.active(queue, self.instance))
                busy = sum(await pipe.execute())
            if not busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"job queue still busy after {timeout} s")
            await asyncio.sleep(0.02)


def _reason(exc: Exception) -> str:
    return str(exc) or exc.__class__.__name__
