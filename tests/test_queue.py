"""The Redis-list job queue: delivery, retries, dead letters, crash recovery,
periodic tasks and graceful shutdown, against a real Redis."""

import asyncio
import json

import pytest
import redis.asyncio as redis_async

from chatserver import appkeys
from chatserver.redis_keys import Keys
from chatserver.ai.answer_job import GENERATE_TASK
from chatserver.jobs.queue import Job, JobQueue, backoff_delay
from support.accounts import create_chat, register
from support.served_app import app_of, db_of


@pytest.fixture
async def redis(servers):
    client = redis_async.Redis.from_url(servers["redis_url"], decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def make_queue(redis, redis_prefix):
    made = []

    def make(**options) -> JobQueue:
        options = {"max_attempts": 3, "retry_base": 0.01, "lease_seconds": 2, "grace_seconds": 2,
                   "poll_seconds": 0.05} | options
        queue = JobQueue(redis, Keys(redis_prefix), {"ai": 2, "preview": 1}, **options)
        made.append(queue)
        return queue

    yield make


async def test_a_job_runs_once_and_leaves_no_trace(make_queue, redis):
    queue = make_queue()
    seen = []

    async def handler(job):
        seen.append(job.payload)

    queue.task("echo", "ai", handler)
    await queue.start()
    await queue.enqueue("echo", {"n": 1})
    await queue.wait_idle()
    await queue.stop()
    assert seen == [{"n": 1}]
    assert queue.stats["ai"].processed == 1
    assert await redis.llen(queue.keys.queue("ai")) == 0
    assert await redis.llen(queue.keys.active("ai", queue.instance)) == 0


async def test_each_queue_runs_at_most_its_concurrency_at_once(make_queue):
    queue = make_queue()
    running, peak = 0, 0
    both = asyncio.Event()

    async def handler(job):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 2:
            both.set()
        # the first jobs wait for each other: the two workers overlap whatever the machine's speed
        await asyncio.wait_for(both.wait(), 30)
        await asyncio.sleep(0)
        running -= 1

    queue.task("slow", "ai", handler)
    for i in range(6):
        await queue.enqueue("slow", {"i": i})
    await queue.start()
    await queue.wait_idle()
    await queue.stop()
    assert peak == 2
    assert queue.stats["ai"].processed == 6


async def test_a_failing_job_is_retried_until_it_succeeds(make_queue, redis):
    queue = make_queue()
    attempts = []

    async def flaky(job):
        attempts.append(job.attempts)
        if len(attempts) < 3:
            raise ConnectionError("service down")

    queue.task("flaky", "ai", flaky)
    await queue.start()
    await queue.enqueue("flaky", {})
    await queue.wait_idle()
    await queue.stop()
    assert attempts == [0, 1, 2]
    assert queue.stats["ai"].retried == 2 and queue.stats["ai"].processed == 1
    assert await redis.llen(queue.keys.dead) == 0


async def test_a_job_that_keeps_failing_is_dead_lettered_and_its_owner_told(make_queue, redis):
    queue = make_queue(max_attempts=3)
    buried = []

    async def broken(job):
        raise ValueError("cannot parse")

    async def on_dead(job, reason):
        buried.append((job.payload, reason))

    queue.task("broken", "ai", broken, on_dead=on_dead)
    await queue.start()
    await queue.enqueue("broken", {"owner": "x"})
    await queue.wait_idle()
    await queue.stop()
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


async def test_jobs_held_by_a_dead_process_come_back_and_run(make_queue, redis):
    dead = make_queue()
    dead.task("work", "ai", lambda job: asyncio.sleep(0))
    # A process took a job and died: its job sits in its active list and its
    # heartbeat has expired.
    job = Job(id="j1", queue="ai", name="work", payload={"n": 7})
    await redis.sadd(dead.keys.instances, dead.instance)
    await redis.lpush(dead.keys.active("ai", dead.instance), job.dumps())

    survivor = make_queue()
    seen = []

    async def handler(job):
        seen.append(job.payload)

    survivor.task("work", "ai", handler)
    await survivor.start()
    await survivor.wait_idle()
    await survivor.stop()
    assert seen == [{"n": 7}]
    assert await redis.llen(dead.keys.active("ai", dead.instance)) == 0
    assert not await redis.sismember(dead.keys.instances, dead.instance)


async def test_the_sweep_leaves_jobs_of_a_live_process_alone(make_queue, redis):
    alive = make_queue()
    alive.task("work", "ai", lambda job: asyncio.sleep(0))
    await redis.sadd(alive.keys.instances, alive.instance)
    await redis.set(alive.keys.heartbeat(alive.instance), "1", ex=30)
    await redis.lpush(alive.keys.active("ai", alive.instance), Job("j", "ai", "work", {}).dumps())
    other = make_queue()
    assert await other.sweep() == 0
    assert await redis.llen(alive.keys.active("ai", alive.instance)) == 1


async def test_shutdown_lets_running_jobs_finish_and_leaves_the_rest_queued(make_queue, redis):
    queue = make_queue(grace_seconds=5)
    started, finished = asyncio.Event(), []

    async def slow(job):
        started.set()
        await asyncio.sleep(0.2)
        finished.append(job.payload["i"])

    queue.concurrency = {"ai": 1, "preview": 1}
    queue.task("slow", "ai", slow)
    for i in range(3):
        await queue.enqueue("slow", {"i": i})
    await queue.start()
    await started.wait()
    await queue.stop()
    assert finished == [0]
    remaining = [Job.loads(raw).payload["i"] for raw in await redis.lrange(queue.keys.queue("ai"), 0, -1)]
    assert sorted(remaining) == [1, 2]
    assert await redis.llen(queue.keys.active("ai", queue.instance)) == 0


async def test_a_job_still_running_after_the_grace_period_is_requeued(make_queue, redis):
    queue = make_queue(grace_seconds=0.1)
    started = asyncio.Event()

    async def stuck(job):
        started.set()
        await asyncio.sleep(30)

    queue.task("stuck", "ai", stuck)
    await queue.enqueue("stuck", {"i": 1})
    await queue.start()
    await started.wait()
    await queue.stop()
    (raw,) = await redis.lrange(queue.keys.queue("ai"), 0, -1)
    assert Job.loads(raw).payload == {"i": 1}


async def test_a_periodic_task_runs_once_per_interval_across_processes(make_queue):
    runs = []
    queues = [make_queue(), make_queue(), make_queue()]
    for queue in queues:
        queue.periodic("tick", 5, lambda q=queue: _record(runs, q))
    for queue in queues:
        await queue.start()
    # each started queue tries the task's lock at once; the first to take it runs the task
    async with asyncio.timeout(30):
        while not runs:
            await asyncio.sleep(0.01)
    for queue in queues:
        await queue.stop()
    assert len(runs) == 1


async def _record(runs, queue):
    runs.append(queue.instance)


async def test_an_unreadable_job_is_dead_lettered_not_lost(make_queue, redis):
    queue = make_queue()
    await redis.lpush(queue.keys.queue("ai"), "{not json")
    await queue.start()
    await queue.wait_idle()
    await queue.stop()
    (entry,) = await redis.lrange(queue.keys.dead, 0, -1)
    assert json.loads(entry)["job"] == "{not json"


async def test_a_dead_generation_job_marks_its_message_failed(make_client):
    client = await make_client(JOB_MAX_ATTEMPTS=1)
    app = app_of(client)
    queue = app[appkeys.QUEUE]
    on_dead = queue.tasks[GENERATE_TASK].on_dead

    async def unreachable_backend(job):
        raise RuntimeError("AI service answered 400")

    queue.task(GENERATE_TASK, "ai", unreachable_backend, on_dead=on_dead)
    account = await register(client)
    chat = await create_chat(client, account)
    resp = await client.post(f"/api/chats/{chat['id']}/messages", json={"content": "hi"}, headers=account.headers)
    answer_id = (await resp.json())["assistant_message"]["id"]
    await queue.wait_idle()
    row = await db_of(client).fetchrow("SELECT status, error, completed_at FROM messages WHERE id = %s",
                                       (answer_id,))
    assert row["status"] == "failed"
    assert row["error"] == "AI service answered 400"
    assert row["completed_at"] is not None


async def test_a_job_past_its_time_limit_is_cancelled_and_counts_as_a_failed_attempt(make_queue, redis):
    queue = make_queue(max_attempts=2)
    runs, cancelled, buried = [], [], []

    async def slow(job):
        runs.append(job.attempts)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(job.attempts)
            raise

    async def on_dead(job, reason):
        buried.append(reason)

    queue.task("slow", "ai", slow, on_dead, timeout=0.1)
    await queue.start()
    await queue.enqueue("slow", {})
    await queue.wait_idle()
    await queue.stop()
    assert runs == cancelled == [0, 1]
    assert buried == ["the job ran past its time limit of 0.1 s"]


async def test_a_job_ignoring_its_cancellation_does_not_hold_its_worker(make_queue):
    queue = make_queue(max_attempts=1)
    queue.concurrency = {"ai": 1, "preview": 1}
    done = []

    async def stubborn(job):
        await _ignore_cancellation(release)

    async def quick(job):
        done.append(job.payload)

    release = asyncio.Event()
    queue.task("stubborn", "ai", stubborn, timeout=0.1)
    queue.task("quick", "ai", quick)
    await queue.start()
    await queue.enqueue("stubborn", {})
    await queue.enqueue("quick", {"n": 1})
    await queue.wait_idle()
    await queue.stop()
    release.set()
    assert done == [{"n": 1}]
    assert queue.stats["ai"].dead == 1


async def _ignore_cancellation(release: asyncio.Event) -> None:
    """Sleep until `release`, swallowing every cancellation (a badly written job)."""
    while not release.is_set():
        try:
            await release.wait()
        except asyncio.CancelledError:
            continue


async def test_shutdown_is_not_held_beyond_the_grace_period_by_a_job_ignoring_cancellation(make_queue, redis):
    queue = make_queue(grace_seconds=0.2)
    started, release = asyncio.Event(), asyncio.Event()

    async def stubborn(job):
        started.set()
        await _ignore_cancellation(release)

    queue.task("stubborn", "ai", stubborn)
    await queue.enqueue("stubborn", {"i": 1})
    await queue.start()
    await started.wait()
    await asyncio.wait_for(queue.stop(), 30)
    release.set()
    (raw,) = await redis.lrange(queue.keys.queue("ai"), 0, -1)
    assert Job.loads(raw).payload == {"i": 1}


async def test_a_job_whose_process_died_counts_that_run_as_an_attempt(make_queue, redis):
    dead = make_queue()
    job = Job(id="j1", queue="ai", name="work", payload={})
    await redis.sadd(dead.keys.instances, dead.instance)
    await redis.lpush(dead.keys.active("ai", dead.instance), job.dumps())
    survivor = make_queue()
    assert await survivor.sweep() == 1
    (raw,) = await redis.lrange(survivor.keys.queue("ai"), 0, -1)
    assert Job.loads(raw) == Job(id="j1", queue="ai", name="work", payload={}, attempts=1, interrupted=1)


async def test_a_job_that_keeps_killing_its_process_is_dead_lettered_not_run_again(make_queue, redis):
    seen, buried = [], []

    async def handler(job):
        seen.append(job)

    async def on_dead(job, reason):
        buried.append(reason)

    job = Job(id="j1", queue="ai", name="work", payload={"n": 1})
    for _ in range(3):  # three processes took it in turn, and died running it
        dead = make_queue()
        await redis.sadd(dead.keys.instances, dead.instance)
        await redis.lpush(dead.keys.active("ai", dead.instance), job.dumps())
        survivor = make_queue()
        await survivor.sweep()
        job = Job.loads(await redis.rpop(survivor.keys.queue("ai")))
    await redis.rpush(survivor.keys.queue("ai"), job.dumps())
    survivor.task("work", "ai", handler, on_dead)
    await survivor.start()
    await survivor.wait_idle()
    await survivor.stop()
    assert seen == []
    assert buried == ["gave up after 3 attempts; the process running it stopped mid-run 3 time(s)"]
    assert await redis.llen(survivor.keys.dead) == 1
