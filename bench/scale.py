"""How the cost of a user's reads grows with their history: a user with
1,000 / 10,000 / 100,000 chats and 10,000 / 100,000 / 1,000,000 messages
(one chat of 5,000 messages across branches, the rest in linear chats),
built directly in PostgreSQL with generate_series in a throwaway database,
each size grown from the one before. At each size, through a running server
(p50 of sequential requests): the chat list's first page and a page deep
into it, a search, the last 50 messages of the big chat, posting a message
there until the built-in backend's first chunk (SSE); and, in this process,
building the AI context of an answer in the big chat. Then the EXPLAIN
ANALYZE plans of the reads at the largest size.

    .venv/bin/python bench/scale.py [--sizes 1000:10000,10000:100000,100000:1000000] [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import aiopg
import psycopg2
import psycopg2.extras
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, server_env, spawn  # noqa: E402

sys.path.insert(0, str(ROOT))
from chatserver.ai.context import build_context  # noqa: E402
from chatserver.api.pagination import encode_cursor  # noqa: E402
from chatserver.config import load_settings  # noqa: E402
from chatserver.data import chats, messages  # noqa: E402
from chatserver.db import Database  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BIG_TURNS = 1250  # about 5,000 messages: each turn also edited and answered, every other one regenerated
# one message in this many holds the searched word (a realistic hit count)
SEARCH_EVERY = 1000
SEARCH = "zebra7"


def build_big_chat(cur, user: uuid.UUID) -> uuid.UUID:
    cur.execute("INSERT INTO chats (user_id, title, updated_at) VALUES (%s, 'big', now() + interval '1 day') "
                "RETURNING id", (user,))
    chat = cur.fetchone()[0]
    rows, parent = [], None
    for turn in range(BIG_TURNS):
        question, answer = uuid.uuid4(), uuid.uuid4()
        edited, edited_answer = uuid.uuid4(), uuid.uuid4()
        rows += [(question, parent, "user", f"question {turn} about the weather"),
                 (answer, question, "assistant", f"answer {turn} " + "it will rain tomorrow " * 10),
                 (edited, parent, "user", f"edited question {turn}"),
                 (edited_answer, edited, "assistant", f"answer to the edit {turn}")]
        if turn % 2:
            rows.append((uuid.uuid4(), question, "assistant", f"regenerated answer {turn}"))
        parent = answer
    psycopg2.extras.execute_values(
        cur, "INSERT INTO messages (id, chat_id, user_id, parent_id, reply_to, role, content, status, completed_at) "
             "VALUES %s",
        [(i, chat, user, p, p if role == "assistant" else None, role, text, "complete", "now")
         for i, p, role, text in rows], page_size=1000)
    cur.execute("UPDATE chats SET shown_leaf = %s WHERE id = %s", (parent, chat))
    return chat


def grow(cur, user: uuid.UUID, chats_from: int, chats_to: int, per_chat: int) -> None:
    """Chats numbered [chats_from, chats_to), each a linear conversation of `per_chat` messages."""
    cur.execute(
        """
        INSERT INTO chats (id, user_id, title, created_at, updated_at, shown_leaf)
        SELECT md5('c' || c)::uuid, %(user)s, 'chat ' || c, now() - c * interval '1 minute',
               now() - c * interval '1 minute', md5('m' || c || '-' || %(per)s)::uuid
        FROM generate_series(%(a)s, %(b)s - 1) c
        """, {"user": user, "a": chats_from, "b": chats_to, "per": per_chat})
    cur.execute(
        """
        INSERT INTO messages (id, chat_id, user_id, parent_id, reply_to, role, content, status, created_at,
                              completed_at)
        SELECT md5('m' || c || '-' || i)::uuid, md5('c' || c)::uuid, %(user)s,
               CASE WHEN i > 1 THEN md5('m' || c || '-' || (i - 1))::uuid END,
               CASE WHEN i %% 2 = 0 THEN md5('m' || c || '-' || (i - 1))::uuid END,
               CASE WHEN i %% 2 = 1 THEN 'user' ELSE 'assistant' END,
               'message ' || i || ' of chat ' || c || ' talks about topic' || ((c * 31 + i) %% 997)
                   || CASE WHEN (c * %(per)s + i) %% %(every)s = 0 THEN ' %(word)s' ELSE '' END
                   || ' and some more ordinary words to make it a sentence',
               'complete', now() - c * interval '1 minute', now() - c * interval '1 minute'
        FROM generate_series(%(a)s, %(b)s - 1) c, generate_series(1, %(per)s) i
        """.replace("%(word)s", SEARCH),
        {"user": user, "a": chats_from, "b": chats_to, "per": per_chat, "every": SEARCH_EVERY})


async def p50(runs: int, call) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def measure(base: str, headers: dict, dsn: str, user: uuid.UUID, big: uuid.UUID, deep_cursor: str,
                  runs: int) -> dict:
    figures = {}
    async with aiohttp.ClientSession(headers=headers) as session:
        async def get(path):
            async with session.get(base + path) as resp:
                assert resp.status == 200, (path, resp.status, await resp.text())
                return await resp.json()

        figures["chats, first page"] = await p50(runs, lambda: get("/api/chats"))
        figures["chats, deep cursor"] = await p50(runs, lambda: get(f"/api/chats?cursor={deep_cursor}"))
        figures["search"] = await p50(runs, lambda: get(f"/api/search?q={SEARCH}"))
        figures["last 50 of big chat"] = await p50(runs, lambda: get(f"/api/chats/{big}/messages?limit=50"))

        async def post():
            async with session.post(f"{base}/api/chats/{big}/messages", json={"content": "will it rain"}) as resp:
                answer = (await resp.json())["assistant_message"]["id"]
            async with session.get(f"{base}/api/messages/{answer}/stream") as resp:
                async for line in resp.content:
                    if line.startswith((b"event: chunk", b"event: content", b"event: complete")):
                        return

        figures["post until first chunk"] = await p50(max(5, runs // 5), post)
    pool = await aiopg.create_pool(dsn, minsize=1, maxsize=2)
    db, settings = Database(pool), load_settings(environ={"AI_BACKEND": "builtin"}, dotenv=None)
    try:
        async with db.transaction() as cur:
            leaf = await chats.lock_leaf(cur, big)
            question = await messages.insert_question(cur, big, user, "and the day after?", [], leaf)
            answer = await messages.insert_answer(cur, big, user, question["id"])
        figures["AI context"] = await p50(runs, lambda: build_context(db, settings, str(answer["id"])))
        await db.execute("DELETE FROM messages WHERE id = ANY(%s)", ([answer["id"], question["id"]],))
    finally:
        pool.close()
        await pool.wait_closed()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000:10000,10000:100000,100000:1000000",
                        help="chats:messages, comma-separated, growing")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = parser.parse_args()
    sizes = [tuple(map(int, s.split(":"))) for s in args.sizes.split(",")]
    name = f"chatserver_bench_scale_{uuid.uuid4().hex[:6]}"
    admin = psycopg2.connect(ADMIN)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN.rsplit("/", 1)[0] + "/" + name
    port = free_port()
    proc = spawn([sys.executable, str(ROOT / "run.py")], port, server_env(port, DB_NAME=name, AI_BACKEND="builtin"))
    base = f"http://127.0.0.1:{port}"
    results = []
    try:
        async def register():
            async with aiohttp.ClientSession() as s, s.post(f"{base}/api/auth/register", json={
                    "email": "scale@example.com", "password": "benchmark-password"}) as resp:
                return await resp.json()
        body = uvloop.run(register())
        user, headers = uuid.UUID(body["user"]["id"]), {"Authorization": f"Bearer {body['access_token']}"}
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        cur = conn.cursor()
        psycopg2.extras.register_uuid()
        # foreign keys are ours to keep here: checking 1,000,000 of them would be most of the build
        cur.execute("SET session_replication_role = replica")
        big = build_big_chat(cur, user)
        built = 0
        for n_chats, n_messages in sizes:
            started = time.perf_counter()
            per_chat = max(2, round((n_messages - BIG_TURNS * 4) / (n_chats - 1)))
            grow(cur, user, built, n_chats - 1, per_chat)
            built = n_chats - 1
            cur.execute("VACUUM ANALYZE chats")
            cur.execute("VACUUM ANALYZE messages")
            cur.execute("SELECT count(*) FROM chats WHERE user_id = %s", (user,))
            total_chats = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM messages WHERE user_id = %s", (user,))
            total_messages = cur.fetchone()[0]
            cur.execute("SELECT updated_at, id FROM chats WHERE user_id = %s ORDER BY updated_at DESC, id DESC "
                        "OFFSET %s LIMIT 1", (user, total_chats - 30))
            stamp, chat_id = cur.fetchone()
            deep = encode_cursor(stamp.isoformat(), chat_id)
            print(f"built {total_chats} chats, {total_messages} messages in {time.perf_counter() - started:.0f} s",
                  flush=True)
            figures = uvloop.run(measure(base, headers, dsn, user, big, deep, args.runs))
            results.append(((total_chats, total_messages), figures))
            print("  " + ", ".join(f"{k} {v:.1f} ms" for k, v in figures.items()), flush=True)
        print()
        print(f"{'p50, ms':<26}" + "".join(f"{f'{c}/{m}':>18}" for (c, m), _ in results) + f"{'largest/smallest':>18}")
        for key in results[0][1]:
            values = [f[key] for _, f in results]
            print(f"{key:<26}" + "".join(f"{v:>18.1f}" for v in values) + f"{values[-1] / values[0]:>17.2f}x")
        print()
        plans = {
            "chats, first page": (chats.PAGE, {"user": user, "stamp": None, "id": None, "limit": 21}),
            "chats, deep cursor": (chats.PAGE, {"user": user, "stamp": stamp, "id": chat_id, "limit": 21}),
            "search": (messages.SEARCH, {"q": SEARCH, "user": user, "limit": 20}),
            "last 50 of big chat": (messages.SHOWN_BRANCH_PAGE, {"chat": big, "user": user, "limit": 51}),
        }
        for title, (sql, params) in plans.items():
            cur.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
            print(f"plan, {title}:\n  " + "\n  ".join(r[0] for r in cur.fetchall()))
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if not args.keep:
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"kept database {name}")
        admin.close()


if __name__ == "__main__":
    main()
