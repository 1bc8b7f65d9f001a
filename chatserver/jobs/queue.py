"""The job queue on Redis: lists of waiting jobs, each process's active list
and lease, the delayed set of retries, and the dead letters. It moves jobs
between them; running them is worker.py's.

Delivery is at-least-once. `take` moves a job with BLMOVE from its queue
list into this process's active list (`take_waiting` moves every job waiting
now, up to a number, in one round trip and without blocking); `finish`,
`retry` and `bury` remove it from there in the same script that puts it
where it goes next, and only if it is still there, so each may be tried
again when its reply was lost. Each process keeps a heartbeat key alive (its
lease); `sweep` puts back the active jobs of processes whose heartbeat
expired, counting the interrupted run as an attempt, so a job that keeps
killing its process is buried like one that keeps failing. Retries wait in a
sorted set scored by due time and are moved back to their queue by a small
Lua script.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from typing import cast

import redis.asyncio as redis_async

from chatserver.jobs.queue_scripts import BURY, MOVE_DUE, REQUEUE_INTERRUPTED, RETRY_LATER, TAKE_WAITING
from chatserver.redis_keys import Keys

log = logging.getLogger(__name__)


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
class QueueStats:
    processed: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0


class JobQueue:
    def __init__(self, redis: redis_async.Redis, keys: Keys, routes: dict[str, str], *, lease_seconds: float = 30):
        """`routes` names the queue list of each job name."""
        self.redis = redis
        self.keys = keys
        self.routes = dict(routes)
        self.queues = list(dict.fromkeys(routes.values()))
        self.lease_seconds = lease_seconds
        # this process, as its active lists and heartbeat name it
        self.instance = uuid.uuid4().hex
        # what this process did with the jobs it took, per queue
        self.stats = {name: QueueStats() for name in self.queues}
        self._take_waiting = redis.register_script(TAKE_WAITING)
        self._move_due = redis.register_script(MOVE_DUE)
        self._requeue_interrupted = redis.register_script(REQUEUE_INTERRUPTED)
        self._retry_later = redis.register_script(RETRY_LATER)
        self._bury = redis.register_script(BURY)

    async def enqueue(self, name: str, payload: dict) -> Job:
        job = Job(id=uuid.uuid4().hex, queue=self.routes[name], name=name, payload=payload)
        await self.redis.lpush(self.keys.queue(job.queue), job.dumps())
        return job

    # -- this process's lease ------------------------------------------

    async def join(self) -> None:
        """Take a lease: from now on this process may hold active jobs."""
        await self.renew()
        await self.redis.sadd(self.keys.instances, self.instance)

    async def renew(self) -> None:
        await self.redis.set(self.keys.heartbeat(self.instance), "1", px=int(self.lease_seconds * 1000))

    async def leave(self) -> None:
        """Put every job this process still holds back on its queue, and give up the lease."""
        await self._requeue_active(self.instance)
        await self.redis.srem(self.keys.instances, self.instance)
        await self.redis.delete(self.keys.heartbeat(self.instance))

    async def is_alive(self, instance: str) -> bool:
        """Whether the process `instance` still keeps its heartbeat (holds its jobs)."""
        return bool(await self.redis.exists(self.keys.heartbeat(instance)))

    async def hold_lock(self, name: str, seconds: float) -> bool:
        """Take the lock `name` for `seconds` unless any process holds it."""
        return bool(await self.redis.set(self.keys.lock(name), self.instance, nx=True, px=int(seconds * 1000)))

    # -- moving jobs -----------------------------------------------------

    async def take(self, queue: str, wait_seconds: float) -> str | None:
        """The next job of `queue`, as stored, moved to this process's active list."""
        # redis-py types the timeout as int; Redis takes fractions of a second
        raw = await self.redis.blmove(self.keys.queue(queue), self.keys.active(queue, self.instance),
                                      wait_seconds, "RIGHT", "LEFT")  # type: ignore[arg-type]
        # the client decodes replies (decode_responses=True)
        return cast(str | None, raw)

    async def take_waiting(self, queue: str, most: int) -> list[str]:
        """Up to `most` jobs of `queue` waiting now, without waiting for more, moved like `take`'s."""
        keys = [self.keys.queue(queue), self.keys.active(queue, self.instance)]
        return cast(list[str], await self._take_waiting(keys=keys, args=[most]))

    async def finish(self, queue: str, raw: str) -> None:
        if await self.redis.lrem(self.keys.active(queue, self.instance), 1, raw):
            self.stats[queue].processed += 1

    async def retry(self, queue: str, raw: str, job: Job, delay: float) -> None:
        """Put the job, as `job` says it is now, in the delayed set for `delay` seconds."""
        if await self._retry_later(keys=[self.keys.active(queue, self.instance), self.keys.delayed],
                                   args=[raw, job.dumps(), time.time() + delay]):
            self.stats[queue].failed += 1
            self.stats[queue].retried += 1

    async def bury(self, queue: str, raw: str, reason: str, *, failed: bool) -> None:
        """Move the job to the dead letters; `failed`: its last run failed."""
        entry = json.dumps({"job": raw, "error": reason, "failed_at": time.time()})
        if await self._bury(keys=[self.keys.active(queue, self.instance), self.keys.dead], args=[raw, entry]):
            self.stats[queue].failed += failed
            self.stats[queue].dead += 1

    async def move_due(self) -> int:
        """Put retries whose time has come back on their queues."""
        return await self._move_due(keys=[self.keys.delayed, *map(self.keys.queue, self.queues)],
                                    args=[time.time(), *self.queues])

    async def sweep(self) -> int:
        """Put back the active jobs of every process whose heartbeat expired;
        the number of jobs put back."""
        moved = 0
        for instance in cast(set[str], await self.redis.smembers(self.keys.instances)):
            if instance == self.instance or await self.is_alive(instance):
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
        for queue in self.queues:
            active, target = self.keys.active(queue, instance), self.keys.queue(queue)
            if interrupted:
                moved += await self._requeue_interrupted(keys=[active, target])
                continue
            while await self.redis.lmove(active, target, "RIGHT", "RIGHT"):
                moved += 1
        return moved

    # -- observing ------------------------------------------------------

    async def depths(self) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for queue in self.queues:
                pipe.llen(self.keys.queue(queue))
            pipe.zcard(self.keys.delayed)
            pipe.llen(self.keys.dead)
            values = await pipe.execute()
        *queued, delayed, dead = values
        depths = dict(zip(self.queues, queued, strict=True))
        depths["delayed"], depths["dead"] = delayed, dead
        return depths

    async def payloads(self, name: str) -> list[dict]:
        """Payloads of every job of this name that is queued, delayed or
        running anywhere, so a sweep can tell a lost job from a slow one."""
        queue = self.routes[name]
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
        """Wait until no job is queued, delayed or running in this process (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while True:
            # one MULTI: read one by one, a job moving from active to delayed
            # between two reads would be seen in neither
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zcard(self.keys.delayed)
                for queue in self.queues:
                    pipe.llen(self.keys.queue(queue))
                    pipe.llen(self.keys.active(queue, self.instance))
                busy = sum(await pipe.execute())
            if not busy:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"job queue still busy after {timeout} s")
            await asyncio.sleep(0.02)
