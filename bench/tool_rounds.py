"""Added latency per tool round: the server's time between a model's answer
asking for a tool call and its next request to the model (parse the call,
mark the step started, run it, mark it ended, build the next request).

Starts the server (`run.py`, own process) on the openai backend against an
OpenAI-compatible fake in this process. Each answer's model asks for a tool
--rounds times, then answers; the fake notes when it finished sending each
tool-call answer and when the next request arrived. Answers run one after
the other, so the gaps are one answer's alone. Two kinds of rounds:

- `search_chats`: the real built-in search over a small database (its query
  is part of the figure);
- a tool the chat does not have: the loop alone (the step started and
  ended, the error the model is sent), no tool run.

The baseline, measured in the same run against the same server, is an
authenticated REST read (`GET /api/messages/{id}`: a token check and one
PostgreSQL query, as a client sees it); each figure is also printed as a
ratio of the baseline's p50, so runs on a busy machine compare.

    .venv/bin/python bench/tool_rounds.py [--answers 30] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, start_server  # noqa: E402

# what the user asks -> the tool the model calls
KINDS = {"my garden": "search_chats", "no tool": "no_such_tool"}


class ToolModel:
    def __init__(self, rounds: int):
        self.rounds = rounds
        self.sent_at: float | None = None
        self.gaps: dict[str, list[float]] = {tool: [] for tool in KINDS.values()}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await request.json()
        tool = KINDS[[m["content"] for m in body["messages"] if m["role"] == "user"][-1]]
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        if done and self.sent_at is not None:
            self.gaps[tool].append(arrived - self.sent_at)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if done < self.rounds:
            delta = {"tool_calls": [{"index": 0, "id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                                     "function": {"name": tool, "arguments": '{"query": "garden"}'}}]}
            finish = "tool_calls"
        else:
            delta, finish = {"content": "Done."}, "stop"
        event = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        await resp.write(f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode())
        await resp.write_eof()
        self.sent_at = time.perf_counter() if done < self.rounds else None
        return resp


async def main(answers: int, rounds: int) -> None:
    model = ToolModel(rounds)
    fake = web.Application()
    fake.router.add_post("/v1/chat/completions", model.handle)
    runner = web.AppRunner(fake, access_log=None)
    await runner.setup()
    fake_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    proc, port = start_server(AI_BACKEND="openai", OPENAI_BASE_URL=f"http://127.0.0.1:{fake_port}/v1",
                              OPENAI_MODEL="bench-model")
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/api/auth/register", json={
                    "email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse"}) as resp:
                headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
            async with session.post(f"{base}/api/chats", json={"title": "bench", "tools": ["builtin:search_chats"]},
                                    headers=headers) as resp:
                chat_id = (await resp.json())["id"]
            reads: list[float] = []
            # the kinds take turns, so that both see the same moments of a busy machine
            for _ in range(answers):
                for question in KINDS:
                    async with session.post(f"{base}/api/chats/{chat_id}/messages", json={"content": question},
                                            headers=headers) as resp:
                        answer_id = (await resp.json())["assistant_message"]["id"]
                    while True:
                        started = time.perf_counter()
                        async with session.get(f"{base}/api/messages/{answer_id}", headers=headers) as resp:
                            message = await resp.json()
                        reads.append(time.perf_counter() - started)
                        if message["status"] not in ("pending", "streaming"):
                            break
                        await asyncio.sleep(0.02)
                    assert message["status"] == "complete" and len(message["steps"]) == rounds, message
    finally:
        proc.terminate()
        proc.wait()
        await runner.cleanup()
    base_p50 = statistics.median(reads) * 1000
    print(f"tool rounds: {answers} answers x {rounds} rounds of each kind; "
          f"added latency per round = the model's tool call sent -> the server's next model request")
    print(f"{'':<44}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'p50/base':>10}{'p99/base':>10}")
    rows = [("baseline: GET /api/messages/{id}", reads), ("round calling search_chats", model.gaps["search_chats"]),
            ("round calling a tool the chat lacks (loop)", model.gaps["no_such_tool"])]
    for name, took in rows:
        ms = sorted(t * 1000 for t in took)
        p50, p99 = statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"{name:<44}{p50:>8.1f}{p99:>8.1f}{ms[-1]:>8.1f}{p50 / base_p50:>9.1f}x{p99 / base_p50:>9.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    uvloop.run(main(args.answers, args.rounds))
