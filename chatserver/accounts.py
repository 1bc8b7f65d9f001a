"""`python run.py user add|disable|enable|list`: accounts made and stopped by
the person running the server (for REGISTRATION = closed)."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import TextIO

import pydantic

from chatserver.config import Settings
from chatserver.credentials import Email, Password, hash_password
from chatserver.data import users
from chatserver.db import Database, create_database_if_missing, open_database
from chatserver.migrate import apply_migrations

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


def run_user_command(dsn: str, settings: Settings, action: str, email: str | None,
                     out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> None:
    create_database_if_missing(dsn)
    apply_migrations(dsn)

    async def add(db: Database) -> None:
        address = _valid(_EMAIL, email or "", "email")
        password = _valid(_PASSWORD, read_password(stdin), "password (8 to 1024 characters)")
        password_hash = await asyncio.to_thread(hash_password, password)
        try:
            row = await users.insert(db, address, password_hash, address.split("@")[0])
        except users.EmailTaken:
            raise CommandError(f"an account with the email {address} already exists") from None
        print(f"added {row['email']} ({row['id']})", file=out)

    async def set_disabled(db: Database) -> None:
        disabled = action == "disable"
        if not await users.set_disabled(db, email or "", disabled):
            raise CommandError(f"no account with the email {email}")
        print(f"{'disabled' if disabled else 'enabled'} {email}", file=out)

    async def list_users(db: Database) -> None:
        for row in await users.list_all(db):
            state = "disabled" if row["disabled_at"] else "active"
            print(f"{row['email']}\t{state}\t{row['created_at'].isoformat()}\t{row['id']}", file=out)

    work = {"add": add, "disable": set_disabled, "enable": set_disabled, "list": list_users}[action]
    asyncio.run(_with_database(dsn, settings, work))
