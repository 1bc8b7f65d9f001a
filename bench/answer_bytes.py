"""Bytes one answer costs PostgreSQL and Redis, per character of the answer,
for answers of 1k, 10k and 100k characters: an answer's cost should grow in
proportion to its length, not faster.

Each checkout measured (this one, and with --baseline another, such as a copy
of main: `git -C /work/main archive main | tar -x -C /tmp/main-copy`) runs its
own `run.py` with an embedded PostgreSQL and Redis of its own under a fresh
DATA_DIR, so that nothing else writes to them. A mock OpenAI-compatible model
server (a process of its own) streams each answer through the `openai`
backend in chunks of 4-8 characters of English-like words. Production's
pace, 20 chunks/s with a checkpoint each STREAM_CHECKPOINT_SECONDS = 1 s and a
sweep each 10 s, is sped up by `--speed` (default 5x: 100 chunks/s,
checkpoints each 0.2 s, sweeps each 2 s), so a checkpoint still covers about
20 chunks (the table says how many characters one covered: fewer when the
server fell behind the model's pace); a 100k answer takes about 3 minutes.
Around each answer (from posting the question to its final write) the bench
reads:

- PostgreSQL: WAL bytes, `pg_current_wal_insert_lsn()` before and after (a
  CHECKPOINT first, so that full-page images are alike for every size);
- Redis: `total_net_input_bytes` (what the server sent Redis: commands and
  their arguments) and `total_net_output_bytes` (what Redis sent back: replies
  and published messages) from INFO.

The bench waits for the end by reading the message's status straight from
PostgreSQL (no WAL, no Redis), not through the API, whose reads would add
their own traffic. Figures are bytes per character of the answer, and each
as a ratio to the 1k answer of the same checkout (the target: 100k at most
1.2x), then, with --baseline, this checkout's as a ratio to the baseline's.

    .venv/bin/python bench/answer_bytes.py [--baseline /tmp/main-copy] [--sizes 1000,10000,100000] [--speed 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import orjson
import psycopg2
import redis
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, spawn  # noqa: E402

sys.path.insert(0, str(ROOT))
from chatserver.embedded import redis_socket  # noqa: E402

CHUNKS_PER_SECOND = 20  # production's pace, sped up by --speed
CHECKPOINT_SECONDS = 1.0
SWEEP_SECONDS = 10.0
WORDS = ("the of and to in is that it for as with was on be by this are or an at from which not have has but "
         "model answer stream server process request response message token chunk client socket database "
         "checkpoint because however therefore example question people system network between through "
         "within without different important information development").split()


def answer_text(size: int) -> str:
    rng = random.Random(size)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS) + (", " if rng.random() < 0.08 else ". " if rng.random() < 0.06 else " ")
        words.append(word)
        length += len(word)
    return "".join(words)[:size]


def serve_model(port: int, rate: float) -> None:
    """The mock model: the question says how many characters to answer."""

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        size = int(body["messages"][-1]["content"].split(":")[1])
        text, rng = answer_text(size), random.Random(size + 1)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        start, at, i = time.monotonic(), 0, 0
        while at < len(text):
            step = rng.randint(4, 8)
            event = {"choices": [{"index": 0, "delta": {"content": text[at:at + step]}}]}
            await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
            at, i = at + step, i + 1
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        await resp.write(b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n')
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/ready", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop())


class Counters:
    """The embedded PostgreSQL's WAL position and Redis's byte counters."""

    def __init__(self, data_dir: Path):
        self.pgdata = data_dir / "postgres"
        self.pg = psycopg2.connect(f"postgresql://postgres@/postgres?host={self.pgdata}")
        self.pg.autocommit = True
        self.app_db = psycopg2.connect(f"postgresql://postgres@/chatserver?host={self.pgdata}")
        self.app_db.autocommit = True
        self.redis = redis.Redis(unix_socket_path=str(redis_socket(data_dir)))

    def checkpoint(self) -> None:
        with self.pg.cursor() as cur:
            cur.execute("CHECKPOINT")

    def read(self) -> tuple[int, int, int]:
        with self.pg.cursor() as cur:
            cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")
            wal = cur.fetchone()[0]
        stats = self.redis.info("stats")
        return wal, stats["total_net_input_bytes"], stats["total_net_output_bytes"]

    def status(self, message_id: str) -> str:
        with self.app_db.cursor() as cur:
            cur.execute("SELECT status FROM messages WHERE id = %s", (message_id,))
            return cur.fetchone()[0]


async def one_answer(session: aiohttp.ClientSession, base: str, headers: dict, counters: Counters,
                     size: int) -> dict:
    async with session.post(f"{base}/api/chats", json={"title": f"{size}"}, headers=headers) as resp:
        chat_id = (await resp.json())["id"]
    counters.checkpoint()
    wal0, in0, out0 = counters.read()
    started = time.monotonic()
    async with session.post(f"{base}/api/chats/{chat_id}/messages", json={"content": f"size:{size}"},
                            headers=headers) as resp:
        answer = (await resp.json())["assistant_message"]["id"]
    while counters.status(answer) != "complete":
        await asyncio.sleep(0.05)
    seconds = time.monotonic() - started
    wal1, in1, out1 = counters.read()
    return {"size": size, "seconds": seconds, "pg": (wal1 - wal0) / size, "in": (in1 - in0) / size,
            "out": (out1 - out0) / size}


async def measure(base: str, counters: Counters, sizes: list[int]) -> list[dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/auth/register", json={
                "email": f"bytes-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark-password"}) as resp:
            headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
        await one_answer(session, base, headers, counters, 200)  # warm-up: first-use costs of every table
        return [await one_answer(session, base, headers, counters, size) for size in sizes]


def run_checkout(root: Path, model_url: str, sizes: list[int], speed: float) -> list[dict]:
    data = Path(tempfile.mkdtemp(prefix="chatserver-bytes-"))
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "APP_HOST": "127.0.0.1", "APP_PORT": str(port),
           "LOG_LEVEL": "WARNING", "DATA_DIR": str(data), "UPLOAD_DIR": f"{data}/uploads",
           "AI_BACKEND": "openai", "OPENAI_BASE_URL": model_url, "OPENAI_API_KEY": "sk-bench",
           "OPENAI_MODEL": "bench-model", "STREAM_CHECKPOINT_SECONDS": str(CHECKPOINT_SECONDS / speed),
           "SWEEP_INTERVAL_SECONDS": str(SWEEP_SECONDS / speed), "RATE_LIMIT_MESSAGES": "0"}
    proc = subprocess.Popen([sys.executable, str(root / "run.py")], env=env, cwd=root)
    try:
        spawn_wait(proc, port)
        counters = Counters(data)
        return uvloop.run(measure(f"http://127.0.0.1:{port}", counters, sizes))
    finally:
        proc.terminate()  # its embedded servers stop with it
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


def spawn_wait(proc: subprocess.Popen, port: int, timeout: float = 120) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2)
            return
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def table(name: str, rows: list[dict], speed: float) -> None:
    base = rows[0]
    print(f"\n{name}: bytes per character of the answer (ratio to the {base['size']:,}-character answer)")
    print(f"{'chars':>8} {'seconds':>8} {'chars/ckpt':>10} {'PostgreSQL WAL':>22} {'Redis in':>18} "
          f"{'Redis out':>18}")
    for row in rows:
        per_checkpoint = row["size"] / max(1.0, row["seconds"] * speed / CHECKPOINT_SECONDS)
        cells = [f"{row[k]:9.1f} ({row[k] / base[k]:5.2f}x)" for k in ("pg", "in", "out")]
        print(f"{row['size']:>8,} {row['seconds']:>8.1f} {per_checkpoint:>10.0f} {cells[0]:>22} {cells[1]:>18} "
              f"{cells[2]:>18}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, help="another checkout to measure first (e.g. a copy of main)")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--speed", type=float, default=5.0, help="how many times production's pace")
    parser.add_argument("--serve-model", nargs=2, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model:
        serve_model(int(args.serve_model[0]), args.serve_model[1])
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sizes = [int(s) for s in args.sizes.split(",")]
    model_port = free_port()
    model = spawn([sys.executable, __file__, "--serve-model", str(model_port), str(CHUNKS_PER_SECOND * args.speed)],
                  model_port, timeout=30)
    model_url = f"http://127.0.0.1:{model_port}/v1"
    try:
        results = {}
        for name, root in ([("baseline", args.baseline.resolve())] if args.baseline else []) + [("this", ROOT)]:
            results[name] = run_checkout(root, model_url, sizes, args.speed)
            table(f"{name} ({root})", results[name], args.speed)
        if args.baseline:
            print("\nthis checkout as a ratio to the baseline, per size: PostgreSQL WAL, Redis in, Redis out")
            for ours, theirs in zip(results["this"], results["baseline"], strict=True):
                print(f"{ours['size']:>8,}  " + "  ".join(f"{ours[k] / theirs[k]:6.2f}x" for k in ("pg", "in", "out")))
    finally:
        model.terminate()
        model.wait()


if __name__ == "__main__":
    main()
