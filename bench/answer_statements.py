"""The SQL statements one `/v1/chat/completions` answer costs, counted.

The server (`run.py`, `openai` backend, default settings, in front of the
mock model server of first_chunk.py) reaches PostgreSQL through a proxy that
counts every statement it sends (statement_counter.py; BEGIN and COMMIT are
statements too). After one answer to warm up, answers are asked one at a
time, streamed and whole, each followed by a pause in which its last writes
land; the baseline is the same server idle for as long (its sweeps and
timers), subtracted from the answers' count. Printed: statements per answer,
and each statement's share, by its first words.

    .venv/bin/python bench/answer_statements.py [--answers 10] [--chunks 40]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import time
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import start_server  # noqa: E402
from first_chunk import MODEL, PIECE, api_key, serve_model  # noqa: E402
from statement_counter import StatementCounter  # noqa: E402

# long enough for an answer's final write and its chat event to land
SETTLE_SECONDS = 0.5


async def one_answer(session: aiohttp.ClientSession, url: str, key: str, stream: bool, chunks: int) -> None:
    body = {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "go"}]}
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
        text = await resp.text()
    if resp.status != 200 or text.count(PIECE) != chunks:
        raise RuntimeError(f"{url} answered {resp.status}: {text[:300]}")


async def counted(counter: StatementCounter, work, times: int) -> tuple[collections.Counter, float]:
    """The statements `work()` run `times` times sent (each run followed by SETTLE_SECONDS), and the seconds it took."""
    before, started = collections.Counter(counter.statements), time.perf_counter()
    for _ in range(times):
        await work()
        await asyncio.sleep(SETTLE_SECONDS)
    return counter.statements - before, time.perf_counter() - started


async def run(args) -> None:
    counter = StatementCounter(5432)
    proxy_port = await counter.start()
    runner, model_url = await serve_model(args.chunks)
    # in a thread: the proxy answers the server's start in this loop
    proc, port = await asyncio.to_thread(start_server, OPENAI_BASE_URL=model_url, OPENAI_API_KEY="sk-bench",
                                         OPENAI_MODEL=MODEL, DB_HOST="127.0.0.1", DB_PORT=str(proxy_port))
    base, results = f"http://127.0.0.1:{port}", {}
    try:
        async with aiohttp.ClientSession() as session:
            key = await api_key(session, base)
            url = f"{base}/v1/chat/completions"
            await one_answer(session, url, key, True, args.chunks)
            await asyncio.sleep(SETTLE_SECONDS)
            for label, stream in (("/v1, streamed", True), ("/v1, whole", False)):
                results[label] = await counted(
                    counter, lambda stream=stream: one_answer(session, url, key, stream, args.chunks), args.answers)
            busy_seconds = max(seconds for _, seconds in results.values())
            idle, idle_seconds = await counted(counter, lambda: asyncio.sleep(busy_seconds), 1)
    finally:
        proc.terminate()
        proc.wait()
        await runner.cleanup()
        await counter.close()

    idle_rate = sum(idle.values()) / idle_seconds
    print(f"SQL statements per answer, {args.answers} answers of {args.chunks} chunks each, one at a time, "
          f"openai backend")
    print(f"(idle baseline: {idle_rate:.2f} statements/s of sweeps and timers, subtracted)")
    for label, (statements, seconds) in results.items():
        per_answer = (sum(statements.values()) - idle_rate * seconds) / args.answers
        print(f"\n{label}: {per_answer:.1f} statements per answer")
        for text, n in statements.most_common():
            print(f"  {n / args.answers:6.2f}  {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=10, help="answers of each kind (default 10)")
    parser.add_argument("--chunks", type=int, default=40, help="chunks per answer (default 40: 2 s)")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
