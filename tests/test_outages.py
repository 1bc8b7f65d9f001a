"""PostgreSQL or Redis unreachable (docs/README.md, "Errors"): `503
service_unavailable` with `Retry-After` on REST, an error frame on the
WebSocket, one log line when the outage starts and one when it ends, and
recovery without a restart with nothing lost. The tests stop and start
servers of their own."""

import asyncio
import logging
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.outage_servers import PostgresServer
from support.uploads import upload


@pytest.fixture(scope="module")
def own_postgres():
    # not under pytest's temp folder: the cluster runs as another system user
    # (when we are root), who may not enter that folder
    folder = Path(tempfile.mkdtemp(prefix="chatserver-outage-pg-"))
    server = PostgresServer(folder / "data")
    yield server
    server.start()
    server.close()
    shutil.rmtree(folder, ignore_errors=True)


def outage_lines(caplog, service: str) -> tuple[list[str], list[str]]:
    lines = [r.getMessage() for r in caplog.records if r.name == "chatserver.outage"]
    return ([line for line in lines if line.startswith(f"{service} is unreachable")],
            [line for line in lines if line.startswith(f"{service} is reachable again")])


async def ended_lines(caplog, service: str) -> tuple[list[str], list[str]]:
    """outage_lines() once the line saying the outage ended is there."""
    async with asyncio.timeout(30):
        while not outage_lines(caplog, service)[1]:
            await asyncio.sleep(0.05)
    return outage_lines(caplog, service)


def no_tracebacks(caplog) -> bool:
    return not [r for r in caplog.records if r.exc_info]


async def until_answered(request, status: int = 200, seconds: float = 60):
    """Repeat `request()` until it answers `status` (the outage is over)."""
    for _ in range(int(seconds / 0.2)):
        resp = await request()
        if resp.status == status:
            return resp
        assert resp.status == 503, await resp.text()
        await asyncio.sleep(0.2)
    raise AssertionError(f"still no {status} after {seconds} s")


async def assert_unavailable(resp) -> None:
    assert resp.status == 503
    assert resp.headers["Retry-After"].isdigit()
    assert_error(await resp.json(), "service_unavailable")


async def test_a_postgresql_outage_answers_503_logs_two_lines_and_recovers(make_client, own_postgres, caplog):
    caplog.set_level(logging.INFO)
    client = await make_client(DATABASE_URL=own_postgres.dsn)
    account = await register(client)
    chat = await create_chat(client, account, "kept across the outage")

    own_postgres.stop()
    try:
        for _ in range(5):
            await assert_unavailable(await client.get("/api/chats", headers=account.headers))
        await assert_unavailable(await client.post("/api/chats", json={"title": "x"}, headers=account.headers))
        await assert_unavailable(await client.post("/api/auth/login",
                                                   json={"email": account.email, "password": account.password}))
    finally:
        own_postgres.start()

    resp = await until_answered(lambda: client.get("/api/chats", headers=account.headers))
    assert [c["id"] for c in (await resp.json())["items"]] == [chat["id"]]
    await until_answered(lambda: client.get("/api/chats", headers=account.headers))
    started, ended = await ended_lines(caplog, "PostgreSQL")
    assert (len(started), len(ended)) == (1, 1)
    assert no_tracebacks(caplog)


async def test_a_hung_postgresql_answers_503_within_db_timeout_seconds_and_recovers(
        make_client, own_postgres, caplog):
    caplog.set_level(logging.INFO)
    client = await make_client(DATABASE_URL=own_postgres.dsn, DB_TIMEOUT_SECONDS=2)
    account = await register(client)

    own_postgres.hang()
    try:
        for _ in range(3):
            began = time.monotonic()
            await assert_unavailable(await client.get("/api/users/me", headers=account.headers))
            # DB_TIMEOUT_SECONDS, plus slack for a slow machine; a hung server used to hold a request 30 s
            assert time.monotonic() - began < 2 + 3
    finally:
        own_postgres.resume()

    resp = await until_answered(lambda: client.get("/api/users/me", headers=account.headers))
    assert (await resp.json())["email"] == account.email
    for _ in range(50):
        started, ended = outage_lines(caplog, "PostgreSQL")
        if ended:
            break
        await asyncio.sleep(0.1)
    assert (len(started), len(ended)) == (1, 1)
    assert no_tracebacks(caplog)


async def test_a_redis_outage_answers_503_logs_two_lines_and_recovers(make_client, own_redis, caplog):
    caplog.set_level(logging.INFO)
    client = await make_client(REDIS_URL=own_redis.url)
    account = await register(client)
    chat = await create_chat(client, account)

    own_redis.stop()
    try:
        resp = await upload(client, account, b"a note", "note.txt")
        await assert_unavailable(resp)
        resp = await upload(client, account, b"another note", "note2.txt")
        await assert_unavailable(resp)
    finally:
        own_redis.start()

    await until_answered(lambda: upload(client, account, b"a note", "note.txt"), status=201)
    resp = await client.get("/api/files", headers=account.headers)
    assert [f["name"] for f in (await resp.json())["items"]] == ["note.txt"]
    resp = await client.get(f"/api/chats/{chat['id']}", headers=account.headers)
    assert resp.status == 200
    started, ended = await ended_lines(caplog, "Redis")
    assert (len(started), len(ended)) == (1, 1)
    assert no_tracebacks(caplog)


async def test_a_postgresql_outage_gets_an_error_frame_and_the_socket_stays(make_client, own_postgres):
    client = await make_client(DATABASE_URL=own_postgres.dsn)
    account = await register(client)
    chat = await create_chat(client, account)
    ws = await client.ws_connect(f"/ws/chat/{chat['id']}?token={account.token}")
    own_postgres.stop()
    try:
        await ws.send_json({"type": "stream_request", "message_id": "00000000-0000-4000-8000-000000000000"})
        frame = await ws.receive_json(timeout=30)
        assert frame["code"] == "service_unavailable" and frame["error"]
    finally:
        own_postgres.start()
    await ws.send_json({"type": "ping", "timestamp": 1})
    assert await ws.receive_json(timeout=30) == {"type": "pong", "timestamp": 1}
    await ws.close()
