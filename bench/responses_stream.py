"""/v1/responses streaming beside /v1/chat/completions, and what deriving the
Responses events from the answer's text costs.

Part 1 (in this process, no server): shapes `--chunks` pieces of text as
Responses events (api/responses_shapes.Events, numbered by character,
nothing stored) and, as the baseline in the same run, as chat.completion
chunks (api/openai_shapes.Chunks). Printed: time and bytes per event, and
the cost of a resume (all events of a finished answer derived again and
those after the middle one sent) against shaping them once.

Part 2: starts the server (`run.py`) with a fake AI service answering every
request at once with --chunks callback events; N clients at once stream an
answer over `POST /v1/chat/completions` (the baseline), then over
`POST /v1/responses`, after a warm-up of both, --rounds times, the order
swapped each round (on a shared machine the load drifts between two phases
run one after the other). Printed for each path: time to first token
(request sent to first text, p50/p99 of every client of every round),
chunks/s (mean of the rounds), the Responses path against the baseline, and
that ratio in each round.

    .venv/bin/python bench/responses_stream.py [--clients 20] [--chunks 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import serve_fake_service, start_server  # noqa: E402
from openai_stream import PIECE, AnsweringService, over_v1, phase  # noqa: E402

from chatserver.api.openai_shapes import Chunks  # noqa: E402
from chatserver.api.responses_shapes import Events, Shape  # noqa: E402
from chatserver.live.wire import End  # noqa: E402

REPEAT = 200


def _shape() -> Shape:
    request = {"model": "m", "instructions": None, "previous_response_id": None, "background": True,
               "store": True, "tools": [], "tool_choice": None, "max_output_tokens": None, "temperature": None,
               "top_p": None, "metadata": None, "user": None}
    return Shape({"message_id": uuid.uuid4(), "request": request, "created_at": dt.datetime.now(dt.UTC),
                  "input_items": [{"content": [{"text": "go"}]}]})


def _responses(shape: Shape, pieces: list[str], after: int = -1) -> list[bytes]:
    events = Events(shape, after)
    out = events.start()
    for piece in pieces:
        out += events.add_text(piece)
    return out + events.end(End("complete", [], None, finish_reason="stop"))


def _completions(pieces: list[str]) -> list[bytes]:
    chunks = Chunks(uuid.uuid4(), "m")
    return [chunks.delta({"role": "assistant", "content": ""}),
            *(chunks.delta({"content": p}) for p in pieces), chunks.delta({}, "stop")]


def _timed(make) -> tuple[float, list[bytes]]:
    started = time.perf_counter()
    for _ in range(REPEAT):
        out = make()
    return (time.perf_counter() - started) / REPEAT, out


def shaping(chunks: int) -> None:
    pieces = [PIECE] * chunks
    shape = _shape()
    base_s, base = _timed(lambda: _completions(pieces))
    resp_s, resp = _timed(lambda: _responses(shape, pieces))
    middle = json.loads(resp[len(resp) // 2].split(b"data: ", 1)[1])["sequence_number"]
    resume_s, resumed = _timed(lambda: _responses(shape, pieces, middle))
    per = lambda seconds, events: seconds / len(events) * 1e6  # noqa: E731
    size = lambda events: sum(map(len, events)) / len(events)  # noqa: E731
    print(f"shaping {chunks} pieces of {len(PIECE)} characters, mean of {REPEAT} runs")
    print(f"{'shape':<26} {'events':>7} {'us/event':>9} {'bytes/event':>12}")
    print(f"{'chat.completion.chunk':<26} {len(base):>7} {per(base_s, base):>9.2f} {size(base):>12.0f}")
    print(f"{'responses events':<26} {len(resp):>7} {per(resp_s, resp):>9.2f} {size(resp):>12.0f}")
    print(f"{'resume after the middle':<26} {len(resumed):>7} {per(resume_s, resumed):>9.2f} {size(resumed):>12.0f}")
    print(f"responses event: {per(resp_s, resp) / per(base_s, base):.2f}x the time and "
          f"{size(resp) / size(base):.2f}x the bytes of a chat chunk; stored per event: 0 bytes (derived)")
    print(f"a resume derives the whole answer again: {resume_s / resp_s:.2f}x shaping it once\n")


async def over_responses(session, base: str, key: str, model: str) -> tuple[float, int]:
    body = {"model": model, "stream": True, "input": "go"}
    started = time.perf_counter()
    first, text = None, ""
    async with session.post(f"{base}/v1/responses", json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"/v1/responses answered {resp.status}: {await resp.text()}")
        async for line in resp.content:
            if not line.startswith(b"data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "response.output_text.delta":
                first = first or time.perf_counter()
                text += event["delta"]
            elif event["type"] in ("response.completed", "response.failed", "response.incomplete"):
                break
    return first - started, len(text) // len(PIECE)


async def serving(args) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=300)) as session:
        service = AnsweringService(session, args.chunks)
        runner, service_url = await serve_fake_service(service.handle)
        proc, port = start_server(AI_SERVICE_URL=service_url, STREAM_TIMEOUT_SECONDS="600", RATE_LIMIT_MESSAGES="0")
        base = f"http://127.0.0.1:{port}"
        try:
            async with session.post(f"{base}/api/auth/register", json={
                    "email": f"resp-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark-password"}) as resp:
                token = (await resp.json())["access_token"]
            async with session.post(f"{base}/api/keys", json={"name": "bench"},
                                    headers={"Authorization": f"Bearer {token}"}) as resp:
                key = (await resp.json())["key"]
            async with session.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {key}"}) as resp:
                model = (await resp.json())["data"][0]["id"]
            paths = {"/v1/chat/completions": lambda: over_v1(session, base, key, model),
                     "/v1/responses": lambda: over_responses(session, base, key, model)}
            # warm up both paths first, so neither pays the server's first requests
            for one in paths.values():
                await phase(5, one)
            rounds: list[dict] = []
            for n in range(args.rounds):
                order = list(paths) if n % 2 == 0 else list(reversed(paths))
                rounds.append({path: await phase(args.clients, paths[path]) for path in order})
        finally:
            await asyncio.gather(*service.tasks, return_exceptions=True)
            proc.terminate()
            proc.wait()
            await runner.cleanup()
    results = {path: pooled([r[path] for r in rounds]) for path in paths}
    print(f"{args.clients} concurrent clients x {args.chunks} chunks x {args.rounds} rounds, callback backend")
    print(f"{'path':<22} {'TTFT p50 ms':>12} {'TTFT p99 ms':>12} {'chunks/s':>10}")
    for path, r in results.items():
        print(f"{path:<22} {r['ttft_p50']:>12.1f} {r['ttft_p99']:>12.1f} {r['chunks_per_s']:>10.0f}")
    chat, responses = results["/v1/chat/completions"], results["/v1/responses"]
    print(f"/v1/responses: TTFT p50 {responses['ttft_p50'] / chat['ttft_p50']:.2f}x, "
          f"chunks/s {responses['chunks_per_s'] / chat['chunks_per_s']:.2f}x /v1/chat/completions")
    each = (r["/v1/responses"]["ttft_p50"] / r["/v1/chat/completions"]["ttft_p50"] for r in rounds)
    print("TTFT p50 ratio in each round:", ", ".join(f"{ratio:.2f}x" for ratio in each))


def pooled(phases: list[dict]) -> dict:
    ttft = sorted(t for p in phases for t in p["ttft"])
    return {"ttft_p50": statistics.median(ttft), "ttft_p99": statistics.quantiles(ttft, n=100)[98],
            "chunks_per_s": statistics.mean(p["chunks_per_s"] for p in phases)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--chunks", type=int, default=200, help="chunks per answer (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both paths, order swapped each (default 3)")
    args = parser.parse_args()
    shaping(args.chunks)
    uvloop.run(serving(args))


if __name__ == "__main__":
    main()
