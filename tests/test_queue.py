"""The Redis-list job queue and its worker: delivery, retries, dead letters,
crash recovery, periodic tasks and graceful shutdown, against a real Redis."""

import asyncio
import dataclasses
import json

import pytest
import redis.asyncio as redis_async
from aiohttp import web
from support.accounts import create_chat, register
from support.served_app import app_of, db_of

from chatserver import appkeys
from chatserver.ai.answer_job import GENERATE_TASK
from chatserver.jobs.queue import Job, JobQueue
from chatserver.jobs.tasks import JobTable, Periodic, Task
from chatserver.jobs.worker import Worker, backoff_delay
from chatserver.redis_keys import Keys


@pytest.fixture
async def redis(servers):
    client = redis_async.Redis.from_url(servers["redis_url"], decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def make_worker(redis, redis_prefix):
    """A worker of `tasks` on the queue "ai", `ai` jobs at a time. Its queue
    knows "ai" also when no task is declared (as one of another process)."""

    def make(*tasks: Task, periodic=(), ai=2, **options) -> Worker:
        options = {"max_attempts": 3, "retry_base": 0.01, "grace_seconds": 2, "poll_seconds": 0.05} | options
        queue = JobQueue(redis, Keys(redis_prefix), {"work": "ai"} | {t.name: t.queue for t in tasks},
                         lease_seconds=2)
        return Worker(queue, JobTable({"ai": ai}, list(tasks), list(periodic)), web.Application(), **options)

    return make


async def _idle(app, job):
    await asyncio.sleep(0)


async def test_a_job_runs_once_and_leaves_no_trace(make_worker, redis):
    seen = []

    async def echo(app, job):
        seen.append(job.payload)

    worker = make_worker(Task("echo", "ai", echo))
    queue = worker.queue
    await worker.start()
    await queue.enqueue("echo", {"n": 1})
    await queue.wait_idle()
    await worker.stop()
    assert seen == [{"n": 1}]
    assert queue.stats["ai"].processed == 1
    assert await redis.llen(queue.keys.queue("ai")) == 0
    assert await redis.llen(queue.keys.active("ai", queue.instance)) == 0


async def test_each_queue_runs_at_most_its_concurrency_at_once(make_worker):
    running, peak = 0, 0
    both = asyncio.Event()

    async def slow(app, job):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 2:
            both.set()
        # the first jobs wait for each other: the two workers overlap whatever the machine's speed
        await asyncio.wait_for(both.wait(), 30)
        await asyncio.sleep(0)
        running -= 1

    worker = make_worker(Task("slow", "ai", slow))
    for i in range(6):
        await worker.queue.enqueue("slow", {"i": i})
    await worker.start()
    await worker.queue.wait_idle()
    await worker.stop()
    assert peak == 2
    assert worker.queue.stats["ai"].processed == 6


async def test_a_failing_job_is_retried_until_it_succeeds(make_worker, redis):
    attempts = []

    async def flaky(app, job):
        attempts.append(job.attempts)
        if len(attempts) < 3:
            raise ConnectionError("service down")

    worker = make_worker(Task("flaky", "ai", flaky))
    queue = worker.queue
    await worker.start()
    await queue.enqueue("flaky", {})
    await queue.wait_idle()
    await worker.stop()
    assert attempts == [0, 1, 2]
    assert queue.stats["ai"].retried == 2 and queue.stats["ai"].processed == 1
    assert await redis.llen(queue.keys.dead) == 0


async def test_a_job_that_keeps_failing_is_dead_lettered_and_its_owner_told(make_worker, redis):
    buried = []

    async def broken(app, job):
        raise ValueError("cannot parse")

    async def on_dead(app, job, reason):
        buried.append((job.payload, reason))

    worker = make_worker(Task("broken", "ai", broken, on_dead=on_dead), max_attempts=3)
    queue = worker.queue
    await worker.start()
    await queue.enqueue("broken", {"owner": "x"})
    await queue.wait_idle()
    await worker.stop()
    assert buried == [({"owner": "x"}, "cannot parse")]
    (entry,) = await redis.lrange(queue.keys.dead, 0, -1)
    entry = json.loads(entry)
    assert entry["error"] == "cannot parse"
    assert Job.loads(entry["job"]).attempts == 2
    assert queue.stats["ai"].dead == 1


def test_backoff_grows_exponentially():
    delays = [backoff_delay(n, 1.0) for n in (1, 2, 3, 4)]
    assert 0.8 <= delays[0] <= 1.2 and 6.4 <= delays[3] <= 9.6
    assert delays == sorted(delays)


async def test_jobs_held_by_a_dead_process_come_back_and_run(make_worker, redis):
    dead = make_worker(Task("work", "ai", _idle)).queue
    # A process took a job and died: its job sits in its active list and its
    # heartbeat has expired.
    job = Job(id="j1", queue="ai", name="work", payload={"n": 7})
    await redis.sadd(dead.keys.instances, dead.instance)
    await redis.lpush(dead.keys.active("ai", dead.instance), job.dumps())
    seen = []

    async def work(app, job):
        seen.append(job.payload)

    survivor = make_worker(Task("work", "ai", work))
    await survivor.start()
    await survivor.queue.wait_idle()
    await survivor.stop()
    assert seen == [{"n": 7}]
    assert await redis.llen(dead.keys.active("ai", dead.instance)) == 0
    assert not await redis.sismember(dead.keys.instances, dead.instance)


async def test_the_sweep_leaves_jobs_of_a_live_process_alone(make_worker, redis):
    alive = make_worker().queue
    await redis.sadd(alive.keys.instances, alive.instance)
    await redis.set(alive.keys.heartbeat(alive.instance), "1", ex=30)
    await redis.lpush(alive.keys.active("ai", alive.instance), Job("j", "ai", "work", {}).dumps())
    other = make_worker().queue
    assert await other.sweep() == 0
    assert await redis.llen(alive.keys.active("ai", alive.instance)) == 1


async def test_shutdown_lets_running_jobs_finish_and_leaves_the_rest_queued(make_worker, redis):
    started, finished = asyncio.Event(), []

    async def slow(app, job):
        started.set()
        await asyncio.sleep(0.2)
        finished.append(job.payload["i"])

    worker = make_worker(Task("slow", "ai", slow), ai=1, grace_seconds=5)
    queue = worker.queue
    for i in range(3):
        await queue.enqueue("slow", {"i": i})
    await worker.start()
    await started.wait()
    await worker.stop()
    assert finished == [0]
    remaining = [Job.loads(raw).payload["i"] for raw in await redis.lrange(queue.keys.queue("ai"), 0, -1)]
    assert sorted(remaining) == [1, 2]
    assert await redis.llen(queue.keys.active("ai", queue.instance)) == 0


async def test_shutdown_says_at_once_how_many_jobs_it_waits_for_and_how_long_at_most(make_worker, caplog):
    started, release = asyncio.Event(), asyncio.Event()

    async def held(app, job):
        started.set()
        await release.wait()

    worker = make_worker(Task("held", "ai", held), grace_seconds=7)
    await worker.start()
    await worker.queue.enqueue("held", {})
    await started.wait()
    caplog.set_level("INFO", logger="chatserver.jobs.worker")
    worker.stopping()
    assert "job queue stopping: waiting for 1 running job(s), 7 s at most" in caplog.text
    release.set()
    await worker.stop()
    assert "job queue stopped" in caplog.text


async def test_a_job_still_running_after_the_grace_period_is_requeued(make_worker, redis):
    started = asyncio.Event()

    async def stuck(app, job):
        started.set()
        await asyncio.sleep(30)

    worker = make_worker(Task("stuck", "ai", stuck), grace_seconds=0.1)
    await worker.queue.enqueue("stuck", {"i": 1})
    await worker.start()
    await started.wait()
    await worker.stop()
    (raw,) = await redis.lrange(worker.queue.keys.queue("ai"), 0, -1)
    assert Job.loads(raw).payload == {"i": 1}


async def test_a_periodic_task_runs_once_per_interval_across_processes(make_worker):
    runs = []

    async def tick(app):
        runs.append(app)

    workers = [make_worker(periodic=[Periodic("tick", 5, tick)]) for _ in range(3)]
    for worker in workers:
        await worker.start()
    # each started worker tries the task's lock at once; the first to take it runs the task
    async with asyncio.timeout(30):
        while not runs:
            await asyncio.sleep(0.01)
    for worker in workers:
        await worker.stop()
    assert len(runs) == 1


async def test_an_unreadable_job_is_dead_lettered_not_lost(make_worker, redis):
    worker = make_worker()
    await redis.lpush(worker.queue.keys.queue("ai"), "{not json")
    await worker.start()
    await worker.queue.wait_idle()
    await worker.stop()
    (entry,) = await redis.lrange(worker.queue.keys.dead, 0, -1)
    assert json.loads(entry)["job"] == "{not json"


async def test_a_dead_generation_job_marks_its_message_failed(make_client):
    client = await make_client(JOB_MAX_ATTEMPTS=1)
    app = app_of(client)
    worker = app[appkeys.WORKER]

    async def unreachable_backend(app, job):
        raise RuntimeError("AI service answered 400")

    worker.tasks[GENERATE_TASK] = dataclasses.replace(worker.tasks[GENERATE_TASK], run=unreachable_backend)
    account = await register(client)
    chat = await create_chat(client, account)
    resp = await client.post(f"/api/chats/{chat['id']}/messages", json={"content": "hi"}, headers=account.headers)
    answer_id = (await resp.json())["assistant_message"]["id"]
    await app[appkeys.QUEUE].wait_idle()
    row = await db_of(client).fetchrow("SELECT status, error, completed_at FROM messages WHERE id = %s",
                                       (answer_id,))
    assert row["status"] == "failed"
    assert row["error"] == "AI service answered 400"
    assert row["completed_at"] is not None


async def test_a_job_past_its_time_limit_is_cancelled_and_counts_as_a_failed_attempt(make_worker):
    runs, cancelled, buried = [], [], []

    async def slow(app, job):
        runs.append(job.attempts)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(job.attempts)
            raise

    async def on_dead(app, job, reason):
        buried.append(reason)

    worker = make_worker(Task("slow", "ai", slow, on_dead, timeout=0.1), max_attempts=2)
    await worker.start()
    await worker.queue.enqueue("slow", {})
    await worker.queue.wait_idle()
    await worker.stop()
    assert runs == cancelled == [0, 1]
    assert buried == ["the job ran past its time limit of 0.1 s"]


async def test_a_job_ignoring_its_cancellation_does_not_hold_its_worker(make_worker):
    done = []
    release = asyncio.Event()

    async def stubborn(app, job):
        await _ignore_cancellation(release)

    async def quick(app, job):
        done.append(job.payload)

    worker = make_worker(Task("stubborn", "ai", stubborn, timeout=0.1), Task("quick", "ai", quick),
                         ai=1, max_attempts=1)
    await worker.start()
    await worker.queue.enqueue("stubborn", {})
    await worker.queue.enqueue("quick", {"n": 1})
    await worker.queue.wait_idle()
    await worker.stop()
    release.set()
    assert done == [{"n": 1}]
    assert worker.queue.stats["ai"].dead == 1


async def _ignore_cancellation(release: asyncio.Event) -> None:
    """Sleep until `release`, swallowing every cancellation (a badly written job)."""
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue


async def test_shutdown_is_not_held_beyond_the_grace_period_by_a_job_ignoring_cancellation(make_worker, redis):
    started, release = asyncio.Event(), asyncio.Event()

    async def stubborn(app, job):
        started.set()
        await _ignore_cancellation(release)

    worker = make_worker(Task("stubborn", "ai", stubborn), grace_seconds=0.2)
    await worker.queue.enqueue("stubborn", {"i": 1})
    await worker.start()
    await started.wait()
    await asyncio.wait_for(worker.stop(), 30)
    release.set()
    (raw,) = await redis.lrange(worker.queue.keys.queue("ai"), 0, -1)
    assert Job.loads(raw).payload == {"i": 1}


async def test_a_job_whose_process_died_counts_that_run_as_an_attempt(make_worker, redis):
    dead = make_worker().queue
    job = Job(id="j1", queue="ai", name="work", payload={})
    await redis.sadd(dead.keys.instances, dead.instance)
    await redis.lpush(dead.keys.active("ai", dead.instance), job.dumps())
    survivor = make_worker().queue
    assert await survivor.sweep() == 1
    (raw,) = await redis.lrange(survivor.keys.queue("ai"), 0, -1)
    assert Job.loads(raw) == Job(id="j1", queue="ai", name="work", payload={}, attempts=1, interrupted=1)


async def test_a_job_that_keeps_killing_its_process_is_dead_lettered_not_run_again(make_worker, redis):
    seen, buried = [], []

    async def work(app, job):
        seen.append(job)

    async def on_dead(app, job, reason):
        buried.append(reason)

    job = Job(id="j1", queue="ai", name="work", payload={"n": 1})
    for _ in range(3):  # three processes took it in turn, and died running it
        dead = make_worker().queue
        await redis.sadd(dead.keys.instances, dead.instance)
        await redis.lpush(dead.keys.active("ai", dead.instance), job.dumps())
        sweeper = make_worker().queue
        await sweeper.sweep()
        job = Job.loads(await redis.rpop(sweeper.keys.queue("ai")))
    await redis.rpush(sweeper.keys.queue("ai"), job.dumps())
    survivor = make_worker(Task("work", "ai", work, on_dead))
    await survivor.start()
    await survivor.queue.wait_idle()
    await survivor.stop()
    assert seen == []
    assert buried == ["gave up after 3 attempts; the process running it stopped mid-run 3 time(s)"]
    assert await redis.llen(survivor.queue.keys.dead) == 1


async def test_an_idle_queue_waits_on_one_redis_connection_however_many_jobs_it_may_run(servers, redis_prefix):
    name = f"worker-{redis_prefix.rsplit(':', 1)[-1]}"
    own = redis_async.Redis.from_url(servers["redis_url"], decode_responses=True, client_name=name)
    queue = JobQueue(own, Keys(redis_prefix), {"work": "ai"}, lease_seconds=2)
    worker = Worker(queue, JobTable({"ai": 50}, [Task("work", "ai", _idle)], []), web.Application(),
                    poll_seconds=1)
    await worker.start()
    try:
        async with asyncio.timeout(30):
            while not (blocked := await _blocked_connections(own, name)):
                await asyncio.sleep(0.02)
        assert blocked == 1
    finally:
        await worker.stop()
        await own.aclose()


async def _blocked_connections(redis, name: str) -> int:
    """Connections named `name` that wait in a blocking command now."""
    return sum(1 for c in await redis.client_list() if c["name"] == name and "b" in c["flags"])


async def test_jobs_waiting_together_all_start_at_once_up_to_the_concurrency(make_worker):
    running, peak = 0, 0
    everyone = asyncio.Event()

    async def gathering(app, job):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 30:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), 30)
        running -= 1

    worker = make_worker(Task("gathering", "ai", gathering), ai=30)
    for i in range(40):
        await worker.queue.enqueue("gathering", {"i": i})
    await worker.start()
    await worker.queue.wait_idle()
    await worker.stop()
    assert peak == 30
    assert worker.queue.stats["ai"].processed == 40


async def test_a_retry_or_a_burial_tried_again_after_a_lost_reply_is_recorded_once(make_worker, redis):
    queue = make_worker().queue
    await queue.join()
    for i in range(2):
        await queue.enqueue("work", {"i": i})
    retried, buried = await queue.take_waiting("ai", 2)
    job = Job.loads(retried)
    await queue.retry("ai", retried, job, 0)
    await queue.bury("ai", buried, "broken", failed=True)
    assert await queue.move_due() == 1  # the retry is back in its queue
    await queue.retry("ai", retried, job, 0)
    await queue.bury("ai", buried, "broken", failed=True)
    assert [Job.loads(raw) for raw in await redis.lrange(queue.keys.queue("ai"), 0, -1)] == [job]
    assert await redis.zcard(queue.keys.delayed) == 0
    assert await redis.llen(queue.keys.dead) == 1
    await queue.leave()


async def test_a_job_that_ended_while_redis_was_down_is_recorded_once_redis_is_back(own_redis, redis_prefix,
                                                                                      caplog):
    started, release = asyncio.Event(), asyncio.Event()

    async def held(app, job):
        started.set()
        await release.wait()

    own = redis_async.Redis.from_url(own_redis.url, decode_responses=True)
    queue = JobQueue(own, Keys(redis_prefix), {"held": "ai"}, lease_seconds=30)
    worker = Worker(queue, JobTable({"ai": 2}, [Task("held", "ai", held)], []), web.Application(),
                    poll_seconds=0.05)
    await worker.start()
    await queue.enqueue("held", {})
    await started.wait()
    own_redis.stop()
    release.set()
    async with asyncio.timeout(30):
        while "Redis unavailable while ending a job" not in caplog.text:
            await asyncio.sleep(0.02)
    own_redis.start()
    async with asyncio.timeout(30):
        while queue.stats["ai"].processed == 0:
            await asyncio.sleep(0.02)
    assert await own.llen(queue.keys.active("ai", queue.instance)) == 0
    await worker.stop()
    # nothing was put back at the stop: the job had ended
    assert await own.llen(queue.keys.queue("ai")) == 0
    await own.aclose()
