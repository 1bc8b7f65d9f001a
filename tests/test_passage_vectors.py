"""Vectors on the embedded PostgreSQL, which has pgvector, with a fake
OpenAI-compatible /v1/embeddings: the embed job after extraction, its
retries, hybrid search finding by meaning what words miss, and reindex."""

import asyncio
import io
import logging
import tempfile
import time
import zlib

import aiohttp
import pytest
from aiohttp import web
from support.accounts import register
from support.messages import get_message, idle, post_message
from support.served_app import ServedLikeRunPy
from support.uploads import processed, uploaded

from chatserver import appkeys
from chatserver.app import create_app
from chatserver.data import passages
from chatserver.embedded import embedded_postgres
from chatserver.knowledge.indexing import reindex
from chatserver.knowledge.vectors import decide_for
from chatserver.migrate import apply_migrations

# words of one meaning share a dimension, as a real model would place them near
MEANINGS = {"car": 0, "automobile": 0, "vehicle": 0, "bread": 1, "loaf": 1, "bakery": 1}
DIMENSIONS = 32


def fake_vector(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in text.lower().replace(".", " ").split():
        vector[MEANINGS.get(word, 2 + zlib.crc32(word.encode()) % (DIMENSIONS - 2))] += 1.0
    return vector


@pytest.fixture(scope="module")
def vector_dsn():
    # a short folder: the server's socket path must stay within the OS limit
    with tempfile.TemporaryDirectory(prefix="pgv") as folder, \
            embedded_postgres(folder, "chatserver_vectors") as dsn:
        apply_migrations(dsn)
        yield dsn


@pytest.fixture
async def embeddings(fake_service):
    """The fake server's state: requests seen, how many to fail first, and
    how long each takes (a slow model)."""
    state = {"requests": [], "fail": 0, "delay": 0.0}

    async def embed(request: web.Request) -> web.Response:
        body = await request.json()
        state["requests"].append(body)
        await asyncio.sleep(state["delay"])
        if state["fail"] > 0:
            state["fail"] -= 1
            return web.json_response({"error": {"message": "busy"}}, status=503)
        return web.json_response({"object": "list", "model": body["model"], "data": [
            {"object": "embedding", "index": n, "embedding": fake_vector(text)}
            for n, text in enumerate(body["input"])]})

    app = web.Application()
    app.router.add_post("/v1/embeddings", embed)
    server = await fake_service(app)
    state["url"] = str(server.make_url("/v1"))
    return state


@pytest.fixture
async def vector_client(aiohttp_client, settings, vector_dsn, embeddings):
    app = create_app(settings.replace(DATABASE_URL=vector_dsn, EMBEDDINGS_BASE_URL=embeddings["url"],
                                      EMBEDDINGS_MODEL="fake-1", EMBEDDINGS_BATCH_SIZE=2))
    return await aiohttp_client(ServedLikeRunPy(app))


async def embedded(client, account, data: bytes, name: str) -> dict:
    file = await processed(client, account, await uploaded(client, account, data, name))
    await client.server.app[appkeys.QUEUE].wait_idle(30)
    return file


async def until(condition, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_hybrid_search_finds_by_meaning_what_the_words_miss(vector_client):
    account = await register(vector_client)
    car = await embedded(vector_client, account, b"My car needs new tyres before winter.", "car.txt")
    await embedded(vector_client, account, b"The bakery sells fresh bread every morning.", "bakery.txt")
    resp = await vector_client.get("/api/files/search", params={"q": "automobile"}, headers=account.headers)
    items = (await resp.json())["items"]
    assert [i["file_id"] for i in items][0] == car["id"]


async def test_a_users_passages_are_found_by_meaning_among_many_nearer_ones_of_another_user(vector_client):
    other, account = await register(vector_client), await register(vector_client)
    crowd = " ".join(f"Car {n} is a car like car {n + 1}, a car among cars." for n in range(400))
    await embedded(vector_client, other, crowd.encode(), "cars.txt")
    mine = await embedded(vector_client, account, b"A vehicle parked outside the station.", "parked.txt")
    resp = await vector_client.get("/api/files/search", params={"q": "automobile"}, headers=account.headers)
    assert [i["file_id"] for i in (await resp.json())["items"]] == [mine["id"]]


async def test_the_models_vectors_get_an_approximate_nearest_neighbour_index(vector_client):
    account = await register(vector_client)
    await embedded(vector_client, account, b"Bread and butter.", "butter.txt")
    definitions = [r["indexdef"] for r in await vector_client.server.app[appkeys.DB].fetch(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'passage_vectors'")]
    assert any("USING hnsw" in d and "vector_cosine_ops" in d and "vector(32)" in d and "'fake-1'" in d
               for d in definitions), definitions


async def test_passages_are_embedded_in_batches_by_the_configured_model(vector_client, embeddings):
    account = await register(vector_client)
    text = " ".join(f"Paragraph {n} talks about the {n}th loaf of bread at length." for n in range(120))
    file = await embedded(vector_client, account, text.encode(), "long.txt")
    db = vector_client.server.app[appkeys.DB]
    count = len(await passages.of_file(db, file["id"]))
    assert count >= 3
    assert await passages.without_vectors(db, "fake-1", 10, file["id"]) == []
    assert all(r["model"] == "fake-1" and len(r["input"]) <= 2 for r in embeddings["requests"])


async def test_the_builtin_answer_quotes_a_knowledge_passage_found_by_meaning(vector_client):
    account = await register(vector_client)
    car = await embedded(vector_client, account, b"My car needs new tyres before winter.", "car.txt")
    resp = await vector_client.post("/api/chats", json={"title": "Garage", "knowledge": [car["id"]]},
                                    headers=account.headers)
    chat = await resp.json()
    posted = await post_message(vector_client, account, chat["id"], "Which automobile?")
    await idle(vector_client)
    answer = await get_message(vector_client, account, posted["assistant_message"]["id"])
    assert "From \u201ccar.txt\u201d: My car needs new tyres before winter." in answer["content"]
    assert [(s["file_id"], s["content"]) for s in answer["sources"]] == \
        [(car["id"], "My car needs new tyres before winter.")]


async def test_a_long_file_is_embedded_in_runs_that_stay_within_the_job_time_limit(aiohttp_client, settings,
                                                                                  vector_dsn, embeddings):
    # one attempt of at most 2 s per job, and a model taking 0.2 s a batch of
    # two passages: the file's 30-odd batches take longer than one job may
    embeddings["delay"] = 0.2
    app = create_app(settings.replace(DATABASE_URL=vector_dsn, EMBEDDINGS_BASE_URL=embeddings["url"],
                                      EMBEDDINGS_MODEL="fake-1", EMBEDDINGS_BATCH_SIZE=2,
                                      JOB_TIMEOUT_SECONDS=2.0, JOB_MAX_ATTEMPTS=1))
    client = await aiohttp_client(ServedLikeRunPy(app))
    account = await register(client)
    text = " ".join(f"Sentence {n} says something about the loaf of bread number {n}." for n in range(800))
    file = await processed(client, account, await uploaded(client, account, text.encode(), "longer.txt"))
    db = app[appkeys.DB]
    assert len(await passages.of_file(db, file["id"])) > 30

    async def embedded_whole() -> bool:
        return await passages.without_vectors(db, "fake-1", 10, file["id"]) == []

    await until(embedded_whole, 120)


async def test_a_failing_embeddings_server_is_retried_until_it_answers(vector_client, embeddings):
    embeddings["fail"] = 2
    account = await register(vector_client)
    file = await embedded(vector_client, account, b"A vehicle parked outside.", "parked.txt")
    db = vector_client.server.app[appkeys.DB]

    async def embedded_now() -> bool:
        return await passages.without_vectors(db, "fake-1", 10, file["id"]) == []

    await until(embedded_now)
    assert embeddings["fail"] == 0


async def test_reindex_replaces_the_vectors_of_another_model(vector_client, settings, vector_dsn, embeddings):
    account = await register(vector_client)
    await embedded(vector_client, account, b"Bread and more bread.", "bread.txt")
    db = vector_client.server.app[appkeys.DB]
    newer = settings.replace(DATABASE_URL=vector_dsn, EMBEDDINGS_BASE_URL=embeddings["url"],
                             EMBEDDINGS_MODEL="fake-2")
    async with aiohttp.ClientSession() as session:
        vectors = await decide_for(newer, db, session)
        out = io.StringIO()
        await reindex(db, newer, vectors, out)
    assert await passages.vector_count(db, "fake-1") == 0
    assert await passages.vector_count(db, "fake-2") > 0
    assert "vectors: embedded" in out.getvalue()


async def test_with_pgvector_the_start_up_log_says_vectors_are_on(aiohttp_client, settings, vector_dsn,
                                                                  embeddings, caplog):
    with caplog.at_level(logging.INFO, logger="chatserver.knowledge.vectors"):
        app = create_app(settings.replace(DATABASE_URL=vector_dsn, EMBEDDINGS_BASE_URL=embeddings["url"]))
        await aiohttp_client(ServedLikeRunPy(app))
    assert any(r.getMessage().startswith("vectors: on (pgvector ") for r in caplog.records)


async def test_search_answers_by_words_when_the_embeddings_server_fails(vector_client, embeddings):
    account = await register(vector_client)
    bakery = await embedded(vector_client, account, b"The bakery sells fresh bread every morning.", "bakery.txt")
    embeddings["fail"] = 1000
    resp = await vector_client.get("/api/files/search", params={"q": "bakery"}, headers=account.headers)
    assert resp.status == 200
    assert [i["file_id"] for i in (await resp.json())["items"]] == [bakery["id"]]
