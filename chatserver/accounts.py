"""`python run.py user add|admin|disable|enable|list`: accounts made, made
administrators and stopped by the person running the server (for
REGISTRATION = closed; nobody is an administrator until made one here).
Disabling an account also closes its open WebSockets and streams on every
running server."""

from __future__ import annotations

import asyncio
import getpass
import sys
import uuid
from typing import TextIO

import pydantic
import redis.asyncio as redis_async

from chatserver.config import Settings
from chatserver.credentials import Email, Password, hash_password
from chatserver.data import users
from chatserver.db import Database, create_database_if_missing, open_database
from chatserver.embedded import redis_socket
from chatserver.live.revocation import announce
from chatserver.migrate import apply_migrations
from chatserver.redis_keys import Keys

_EMAIL = pydantic.TypeAdapter(Email)
_PASSWORD = pydantic.TypeAdapter(Password)


class CommandError(Exception):
    """Told to the operator in one line; the command exits with status 1."""


def read_password(stdin: TextIO) -> str:
    """From a prompt (asked twice) on a terminal, else the first line of standard input."""
    if stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise CommandError("the passwords differ")
        return password
    return stdin.readline().rstrip("\r\n")


def _valid(adapter: pydantic.TypeAdapter, value: str, what: str) -> str:
    try:
        return adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        raise CommandError(f"{what}: {exc.errors()[0]['msg']}") from None


async def _with_database(dsn: str, settings: Settings, work) -> None:
    db: Database = await open_database(dsn, settings.replace(DB_POOL_MIN=1, DB_POOL_MAX=2))
    try:
        await work(db)
    finally:
        db.pool.close()
        await db.pool.wait_closed()


async def _close_open_sockets(settings: Settings, user_id: uuid.UUID) -> None:
    """Tell the running servers, through their Redis, to close what the account holds open."""
    if settings.embedded_redis:
        socket_file = redis_socket(settings.DATA_DIR)
        if not socket_file.exists():
            return  # no server runs on this DATA_DIR: nothing is open
        url = f"unix://{socket_file}"
    else:
        url = settings.external_redis_url
    client = redis_async.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        await announce(client, Keys(settings.REDIS_KEY_PREFIX), "user", user_id)
    except (redis_async.ConnectionError, redis_async.TimeoutError, OSError) as exc:
        print(f"note: Redis is unreachable ({exc}); open WebSockets and streams of this account close "
              "when their server next reaches Redis", file=sys.stderr)
    finally:
        await client.aclose()


def run_user_command(dsn: str, settings: Settings, action: str, email: str | None,
                     out: TextIO = sys.stdout, stdin: TextIO = sys.stdin, admin: bool = False) -> None:
    create_database_if_missing(dsn)
    apply_migrations(dsn)

    async def add(db: Database) -> None:
        address = _valid(_EMAIL, email or "", "email")
        password = _valid(_PASSWORD, read_password(stdin), "password (8 to 1024 characters)")
        password_hash = await asyncio.to_thread(hash_password, password)
        try:
            row = await users.insert(db, address, password_hash, address.split("@")[0],
                                     "admin" if admin else "user")
        except users.EmailTaken:
            raise CommandError(f"an account with the email {address} already exists") from None
        print(f"added {row['email']} ({row['id']}){' as an administrator' if admin else ''}", file=out)

    async def make_admin(db: Database) -> None:
        if await users.set_role_by_email(db, email or "", "admin") is None:
            raise CommandError(f"no account with the email {email}")
        print(f"{email} is an administrator", file=out)

    async def set_disabled(db: Database) -> None:
        disabled = action == "disable"
        user_id = await users.set_disabled(db, email or "", disabled)
        if user_id is None:
            raise CommandError(f"no account with the email {email}")
        print(f"{'disabled' if disabled else 'enabled'} {email}", file=out)
        if disabled:
            await _close_open_sockets(settings, user_id)

    async def list_users(db: Database) -> None:
        for row in await users.list_all(db):
            state = "disabled" if row["disabled_at"] else "active"
            print(f"{row['email']}\t{state}\t{row['role']}\t{row['created_at'].isoformat()}\t{row['id']}",
                  file=out)

    work = {"add": add, "admin": make_admin, "disable": set_disabled, "enable": set_disabled,
            "list": list_users}[action]
    asyncio.run(_with_database(dsn, settings, work))
