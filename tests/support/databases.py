"""Databases made and dropped by hand, for the session's database and for
tests that need a server-level statement or a database of their own."""

from __future__ import annotations

import psycopg2


def admin_sql(admin_dsn: str, sql: str) -> None:
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


def with_database(dsn: str, name: str) -> str:
    head, _, tail = dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{tail}" if tail else "")
