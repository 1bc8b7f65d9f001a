"""Migrations apply to an empty database, once, and safely in parallel."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psycopg2
from support.paths import TESTS_DIR

from chatserver.migrate import apply_migrations


def tables(dsn):
    conn = psycopg2.connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_migrations_build_the_schema_from_an_empty_database(empty_database):
    assert apply_migrations(empty_database) >= 1
    assert {"users", "chats", "messages", "files"} <= tables(empty_database)
    assert apply_migrations(empty_database) == 0


def test_two_processes_migrating_at_once_both_succeed(empty_database):
    with ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(apply_migrations, [empty_database, empty_database]))
    assert sorted(counts)[0] == 0 and sorted(counts)[1] >= 1
    assert {"users", "chats", "messages", "files"} <= tables(empty_database)


def test_run_py_migrate_applies_the_migrations(empty_database, tmp_path):
    result = subprocess.run(
        [sys.executable, str(TESTS_DIR.parent / "run.py"), "migrate"],
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": empty_database},
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "migration(s) applied" in result.stdout
    assert "messages" in tables(empty_database)
