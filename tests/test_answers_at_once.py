"""How many answers one process generates at once: every answer on a backend
whose model server is elsewhere, the built-in search and the local jobs a few
at a time (docs/jobs.md)."""

from __future__ import annotations

import asyncio

from support.fake_openai import FakeOpenAI, start_openai_service
from support.served_app import app_of

from chatserver import appkeys

# past aiohttp's default of 100 connections per session and redis-py's of 100 per pool
ANSWERS = 110


async def test_answers_on_a_model_server_elsewhere_all_stream_at_once_with_the_default_settings(
        fake_service, make_client, sdk):
    hold = asyncio.Event()
    service, client = await start_openai_service(fake_service, make_client, FakeOpenAI(hold=hold),
                                                 RATE_LIMIT_MESSAGES="0", STREAM_TIMEOUT_SECONDS=300)
    api = await sdk(client)
    question = [{"role": "user", "content": "Are we all here?"}]

    async def one() -> str:
        stream = await api.chat.completions.create(model="test-model", messages=question, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    streams = [asyncio.create_task(one()) for _ in range(ANSWERS)]
    # the model server holds every answer open after its first piece: they can all be
    # there together only if none waits for another to end
    async with asyncio.timeout(120):
        while len(service.requests_about("Are we all here?")) < ANSWERS:
            await asyncio.sleep(0.05)
    hold.set()
    assert await asyncio.gather(*streams) == ["Hello!"] * ANSWERS


async def test_the_built_in_search_and_the_local_jobs_run_a_few_at_a_time(make_client):
    client = await make_client()
    assert app_of(client)[appkeys.WORKER].concurrency == {"ai": 8, "preview": 2, "import": 1}


async def test_a_model_server_elsewhere_takes_many_answers_at_once(fake_service, make_client):
    _, client = await start_openai_service(fake_service, make_client)
    assert app_of(client)[appkeys.WORKER].concurrency == {"ai": 256, "preview": 2, "import": 1}


async def test_queue_ai_concurrency_sets_the_answers_at_once_whatever_the_backend(fake_service, make_client):
    _, client = await start_openai_service(fake_service, make_client, QUEUE_AI_CONCURRENCY=3)
    assert app_of(client)[appkeys.WORKER].concurrency["ai"] == 3
