"""Safe by default: no publicly known secret, tokens that expire and die with
their account, closed registration, accounts managed from the command line,
a protected /metrics, and a database created when missing."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import subprocess
import sys
import uuid

import aiohttp
import jwt
import pytest
from psycopg2.extensions import make_dsn
from support.accounts import create_chat, register
from support.databases import admin_sql, with_database
from support.error_shape import assert_error
from support.paths import TESTS_DIR
from support.served_app import db_of
from support.uploads import upload

from chatserver import appkeys
from chatserver.ai.callback import _key, callback_token
from chatserver.data import users

ROOT = TESTS_DIR.parent
OLD_EXAMPLE_SECRET = "change-me-to-a-long-random-secret"


def _token(secret: str, sub: str, *, exp: bool = True, algorithm: str = "HS256") -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": sub, "iat": now}
    if exp:
        claims["exp"] = now + dt.timedelta(minutes=5)
    return jwt.encode(claims, secret, algorithm=algorithm)


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def fresh_database(servers):
    """A DSN naming a database that does not exist yet; dropped afterwards."""
    name = f"chatserver_fresh_{uuid.uuid4().hex[:10]}"
    yield with_database(servers["admin_dsn"], name)
    admin_sql(servers["admin_dsn"], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- secrets ---------------------------------------------------------------

async def test_a_token_forged_with_the_old_example_secret_is_refused(make_client, fresh_database):
    client = await make_client(DATABASE_URL=fresh_database, JWT_SECRET="", start_workers=False)
    victim = await register(client)
    forged = _token(OLD_EXAMPLE_SECRET, victim.id)
    resp = await client.get("/api/chats", headers=_bearer(forged))
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")


async def test_a_generated_secret_is_kept_across_restarts_and_shared_by_every_app(make_client, fresh_database,
                                                                                  caplog):
    with caplog.at_level(logging.INFO, logger="chatserver.secret"):
        first = await make_client(DATABASE_URL=fresh_database, JWT_SECRET="", start_workers=False)
        second = await make_client(DATABASE_URL=fresh_database, JWT_SECRET="", start_workers=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "chatserver.secret"]
    assert lines == [
        "JWT_SECRET is not set: generated a random secret and stored it in the database",
        "JWT_SECRET is not set: using the generated secret stored in the database",
    ]
    account = await register(first)
    assert (await second.get("/api/users/me", headers=account.headers)).status == 200

    secret = first.server.app[appkeys.SETTINGS].JWT_SECRET
    assert len(secret.encode()) >= 32 and secret == second.server.app[appkeys.SETTINGS].JWT_SECRET
    await first.close()
    await second.close()
    restarted = await make_client(DATABASE_URL=fresh_database, JWT_SECRET="", start_workers=False)
    assert (await restarted.get("/api/users/me", headers=account.headers)).status == 200


async def test_two_apps_starting_together_on_a_new_database_agree_on_the_secret(make_client, fresh_database):
    import asyncio
    first, second = await asyncio.gather(
        make_client(DATABASE_URL=fresh_database, JWT_SECRET="", start_workers=False),
        make_client(DATABASE_URL=fresh_database, JWT_SECRET="", start_workers=False))
    account = await register(first)
    assert (await second.get("/api/users/me", headers=account.headers)).status == 200


def test_the_callback_token_key_is_derived_with_a_label_and_is_not_the_jwt_key(settings):
    secret = settings.JWT_SECRET.encode()
    assert _key(settings) not in (secret, hashlib.sha256(secret).digest())
    assert _key(settings) == hmac.new(secret, b"chatserver key for AI callback tokens", hashlib.sha256).digest()


async def test_a_callback_token_made_with_the_jwt_secret_itself_is_refused(make_client, settings):
    client = await make_client(start_workers=False)
    message_id = uuid.uuid4()
    plain = hmac.new(settings.JWT_SECRET.encode(), str(message_id).encode(), hashlib.sha256).digest()
    forged = base64.urlsafe_b64encode(plain).rstrip(b"=").decode()
    assert forged != callback_token(settings, message_id)
    resp = await client.post(f"/api/ai/callback/{message_id}?token={forged}", json={"type": "chunk", "content": "x"})
    assert resp.status == 403
    assert_error(await resp.json(), "invalid_token")


# -- tokens ----------------------------------------------------------------

async def test_a_token_without_exp_is_401(client, settings, user):
    token = _token(settings.JWT_SECRET, user.id, exp=False)
    for method, path in (("GET", "/api/users/me"), ("GET", "/api/chats")):
        resp = await client.request(method, path, headers=_bearer(token))
        assert resp.status == 401, path
        assert_error(await resp.json(), "unauthorized")


async def test_a_valid_token_of_a_deleted_user_is_401_everywhere(client, user):
    await db_of(client).execute("DELETE FROM users WHERE id = %s", (user.id,))
    created = await client.post("/api/chats", json={"title": "x"}, headers=user.headers)
    uploaded = await upload(client, user, b"hello")
    listed = await client.get("/api/chats", headers=user.headers)
    socket = await client.get(f"/ws/chat/{uuid.uuid4()}?token={user.token}")
    for resp in (created, uploaded, listed, socket):
        assert resp.status == 401, resp.url
        assert_error(await resp.json(), "unauthorized")


async def test_a_disabled_account_is_refused_at_once_by_every_app(make_client, user, client):
    other_process = await make_client(start_workers=False)
    assert (await other_process.get("/api/chats", headers=user.headers)).status == 200
    assert await users.set_disabled(db_of(client), user.email, True)
    for app_client in (client, other_process):
        resp = await app_client.get("/api/chats", headers=user.headers)
        assert resp.status == 401
        assert_error(await resp.json(), "unauthorized")
    login = await client.post("/api/auth/login", json={"email": user.email, "password": user.password})
    assert login.status == 401


# -- registration ----------------------------------------------------------

async def test_closed_registration_is_403_and_existing_accounts_still_log_in(make_client):
    open_client = await make_client(start_workers=False)
    account = await register(open_client)
    closed = await make_client(REGISTRATION="closed", start_workers=False)
    resp = await closed.post("/api/auth/register", json={"email": "new@example.com", "password": "long enough"})
    assert resp.status == 403
    assert_error(await resp.json(), "registration_closed")
    login = await closed.post("/api/auth/login", json={"email": account.email, "password": account.password})
    assert login.status == 200


# -- python run.py user ... ------------------------------------------------

def _run_user(servers, *args, stdin: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": servers["dsn"], "REDIS_URL": servers["redis_url"]}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "user", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


async def test_run_py_user_add_disable_and_list(servers, client):
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    added = _run_user(servers, "add", email, stdin="a password from stdin\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith(f"added {email} (")

    login = await client.post("/api/auth/login", json={"email": email, "password": "a password from stdin"})
    assert login.status == 200
    token = (await login.json())["access_token"]

    listed = _run_user(servers, "list")
    assert f"{email}\tactive\t" in listed.stdout

    disabled = _run_user(servers, "disable", email)
    assert disabled.returncode == 0 and disabled.stdout.strip() == f"disabled {email}"
    assert (await client.get("/api/users/me", headers=_bearer(token))).status == 401
    assert f"{email}\tdisabled\t" in _run_user(servers, "list").stdout

    enabled = _run_user(servers, "enable", email)
    assert enabled.returncode == 0
    assert (await client.get("/api/users/me", headers=_bearer(token))).status == 200


@pytest.mark.parametrize("args, stdin, message", [
    (("add", "not-an-email"), "long enough password\n", "error: email:"),
    (("add", "short@example.com"), "short\n", "error: password"),
    (("disable", "nobody-here@example.com"), "", "error: no account with the email nobody-here@example.com"),
])
def test_run_py_user_errors_are_one_line(servers, args, stdin, message):
    result = _run_user(servers, *args, stdin=stdin)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_run_py_user_add_twice_is_refused(servers):
    email = f"twice-{uuid.uuid4().hex[:8]}@example.com"
    assert _run_user(servers, "add", email, stdin="long enough password\n").returncode == 0
    again = _run_user(servers, "add", email.upper(), stdin="long enough password\n")
    assert again.returncode == 1 and "already exists" in again.stderr


# -- /metrics --------------------------------------------------------------

async def test_metrics_needs_the_metrics_token_when_one_is_set(make_client):
    client = await make_client(METRICS_TOKEN="scrape-token-0123456789", start_workers=False)
    for headers in ({}, _bearer("wrong"), {"Authorization": "scrape-token-0123456789"}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401
        assert_error(await resp.json(), "unauthorized")
    resp = await client.get("/metrics", headers=_bearer("scrape-token-0123456789"))
    assert resp.status == 200
    assert "http_requests_total" in await resp.text()


async def test_metrics_is_open_without_a_metrics_token(client):
    assert (await client.get("/metrics")).status == 200


# -- DB_NAME ---------------------------------------------------------------

async def test_a_missing_database_on_an_external_server_is_created(make_client, fresh_database):
    client = await make_client(DATABASE_URL=fresh_database, start_workers=False)
    assert (await client.get("/ready")).status == 200
    await register(client)


def test_a_database_that_cannot_be_created_stops_start_up_with_one_line(servers, tmp_path):
    role = f"nocreate_{uuid.uuid4().hex[:8]}"
    admin_sql(servers["admin_dsn"], f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        dsn = make_dsn(with_database(servers["admin_dsn"], f"missing_{uuid.uuid4().hex[:8]}"), user=role)
        result = subprocess.run([sys.executable, str(ROOT / "run.py"), "migrate"],
                                env={"PATH": os.environ["PATH"], "DATABASE_URL": dsn},
                                capture_output=True, text=True, timeout=60, cwd=tmp_path)
    finally:
        admin_sql(servers["admin_dsn"], f'DROP ROLE "{role}"')
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: DB_NAME: database 'missing_"), result.stderr


async def closed_with(ws, seconds: float = 10) -> int | None:
    """Read the socket until it closes (pongs and frames are skipped); its close code."""
    async with asyncio.timeout(seconds):
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.CLOSE:
                return message.data
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return ws.close_code


async def test_run_py_user_disable_closes_the_accounts_open_sockets_in_every_process(make_client, servers,
                                                                                     settings):
    client = await make_client(start_workers=False)
    other_process = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    sockets = [await app_client.ws_connect(f"/ws/chat/{chat['id']}?token={account.token}")
               for app_client in (client, other_process)]
    for ws in sockets:
        await ws.send_json({"type": "subscribe"})
        assert (await ws.receive_json(timeout=10))["type"] == "subscribed"

    env = {"PATH": os.environ["PATH"], "DATABASE_URL": servers["dsn"], "REDIS_URL": servers["redis_url"],
           "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX}
    disabled = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(ROOT / "run.py"), "user", "disable", account.email], env=env,
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert disabled.returncode == 0, disabled.stderr

    assert [await closed_with(ws) for ws in sockets] == [4401, 4401]
