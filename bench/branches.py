"""The query plan and timing of listing the last 50 messages of a chat with
5,000 messages across many branches (`GET /api/chats/{id}/messages` runs
data/messages.BRANCH_PAGE, the statement measured here).

The chat: 1,250 turns on the shown branch (2,500 messages); every question
also has an edited version with an answer, and every other one a regenerated
answer too, in a throwaway database on the local PostgreSQL.

    .venv/bin/python bench/branches.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import psycopg2.extras

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chatserver.data.messages import BRANCH_PAGE
from chatserver.migrate import apply_migrations

TURNS = 1250


def build(cur) -> dict:
    cur.execute("INSERT INTO users (email, password_hash) VALUES ('bench@example.com', 'x') RETURNING id")
    user = cur.fetchone()[0]
    cur.execute("INSERT INTO chats (user_id, title) VALUES (%s, 'branches') RETURNING id", (user,))
    chat = cur.fetchone()[0]
    rows, parent = [], None
    for turn in range(TURNS):
        question, answer = uuid.uuid4(), uuid.uuid4()
        edited, edited_answer = uuid.uuid4(), uuid.uuid4()
        rows += [(question, parent, "user", f"question {turn}"),
                 (answer, question, "assistant", f"answer {turn} " * 20),
                 (edited, parent, "user", f"edited question {turn}"),
                 (edited_answer, edited, "assistant", f"answer to the edit {turn}")]
        if turn % 2:
            rows.append((uuid.uuid4(), question, "assistant", f"regenerated answer {turn}"))
        parent = answer
    rows = rows[:5000]
    psycopg2.extras.execute_values(
        cur,
        "INSERT INTO messages (id, chat_id, user_id, parent_id, reply_to, role, content, status) VALUES %s",
        [(i, chat, user, p, p if role == "assistant" else None, role, text, "complete") for i, p, role, text in rows],
        page_size=1000)
    leaf = [r for r in rows if r[2] == "assistant" and not r[3].startswith(("regenerated", "answer to"))][-1][0]
    cur.execute("UPDATE chats SET shown_leaf = %s WHERE id = %s", (leaf, chat))
    cur.execute("ANALYZE messages")
    return {"chat": chat, "user": user, "start": leaf, "limit": 51}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"chatserver_bench_branches_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(args.dsn)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    dsn = args.dsn.rsplit("/", 1)[0] + "/" + name
    try:
        apply_migrations(dsn)
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        cur = conn.cursor()
        params = build(cur)
        cur.execute("SELECT count(*) FROM messages")
        print(f"messages in the chat: {cur.fetchone()[0]}")
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + BRANCH_PAGE, params)
        print("\n".join(r[0] for r in cur.fetchall()))
        timings = []
        for _ in range(200):
            started = time.perf_counter()
            cur.execute(BRANCH_PAGE, params)
            assert len(cur.fetchall()) == 51
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        print(f"last 51 rows (a page of 50 plus the look-ahead), 200 runs: median {statistics.median(timings):.2f} ms, "
              f"p95 {timings[189]:.2f} ms")
        conn.close()
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
