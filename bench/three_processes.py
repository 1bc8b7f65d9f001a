"""Three `run.py` processes behind nginx against one, same load, same nginx configuration.

Starts an OpenAI-compatible model server (tests/support/paced_model.py, in a
child process of its own, streaming each answer's --pieces deltas as fast as
they are read), three `run.py` processes sharing one PostgreSQL database and
one Redis prefix, and Debian's nginx with deploy/nginx.conf
(tests/support/nginx_proxy.py) twice: in front of the first process alone,
and in front of all three. Each round, --clients clients at once (a third
on the WebSocket, a third on server-sent events, a third on
`/v1/chat/completions` streams) ask a question through nginx and read the
answer to its end. After a short warm-up round on each, the two setups take
--rounds turns. Printed per setup: model pieces delivered to the clients per
second (every client's text counted in pieces, over the time from the first
question to the last end of each round), frames or events per second, and
three processes' figure as a ratio to one's.

    .venv/bin/python bench/three_processes.py [--clients 60] [--pieces 200] [--rounds 2]

On a machine of few cores the server processes share them with the clients,
the model, nginx, PostgreSQL and Redis: the ratio says what a second and
third process buy there, not what they buy on cores of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, server_env, spawn  # noqa: E402
from support.net import free_port  # noqa: E402
from support.nginx_proxy import NGINX, NginxProxy  # noqa: E402
from support.paced_model import PacedModel  # noqa: E402
from support.stream_readers import Reading, post_json, read_by_sse, read_by_v1, read_by_websocket  # noqa: E402

SURFACES = ("websocket", "sse", "v1")


def serve_model(port: int, pieces: int) -> None:
    """The model server's own process (this script with --serve-model)."""
    uvloop.install()
    web.run_app(PacedModel(pieces=pieces, pause=0).app, host="127.0.0.1", port=port, print=None, access_log=None)


async def start_model(pieces: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-model", str(port), "--pieces", str(pieces)])
    url = f"http://127.0.0.1:{port}/v1"
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.post(f"{url}/chat/completions", json={"messages": [{"content": "up"}]}) as resp:
                    await resp.read()
                    return proc, url
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("the model server did not start")


def start_processes(model_url: str, count: int) -> list[tuple[subprocess.Popen, int]]:
    ports = [free_port() for _ in range(count)]
    # one database and one Redis prefix for all of them (server_env empties the database)
    env = server_env(ports[0], OPENAI_BASE_URL=model_url, OPENAI_MODEL="test-model", OPENAI_API_KEY="sk-bench",
                     # every answer starts at once; a worker loop holds one of the 100 Redis connections
                     QUEUE_AI_CONCURRENCY="60", DB_POOL_MAX="10", STREAM_TIMEOUT_SECONDS="600")
    started = []
    for port in ports:
        started.append((spawn([sys.executable, str(ROOT / "run.py")], port, env | {"APP_PORT": str(port)}), port))
    return started


async def one_round(http: aiohttp.ClientSession, base: str, clients: int, tag: str) -> dict:
    account = await post_json(http, f"{base}/api/auth/register",
                              {"email": f"three-{uuid.uuid4().hex[:8]}@example.com", "password": "bench-password"}, {})
    token = account["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    key = (await post_json(http, f"{base}/api/keys", {"name": "bench"}, headers))["key"]
    chats = await asyncio.gather(*(post_json(http, f"{base}/api/chats", {"title": "bench"}, headers)
                                   for _ in range(clients)))

    async def client(n: int) -> Reading:
        surface, question, reading = SURFACES[n % 3], f"{tag}{n}", Reading()
        if surface == "v1":
            return await read_by_v1(http, base, key, question, reading)
        chat_id = chats[n]["id"]
        posted = await post_json(http, f"{base}/api/chats/{chat_id}/messages", {"content": question}, headers)
        answer_id = posted["assistant_message"]["id"]
        if surface == "websocket":
            return await read_by_websocket(http, base, token, chat_id, answer_id, reading)
        return await read_by_sse(http, base, headers, answer_id, reading)

    started = time.perf_counter()
    readings = await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    unfinished = [r for r in readings if r.end not in ("complete", "done")]
    if unfinished:
        raise RuntimeError(f"{len(unfinished)} answer(s) did not complete: {unfinished[0]}")
    return {"pieces": sum(r.text.count(" ") for r in readings), "frames": sum(r.chunks for r in readings),
            "elapsed": elapsed}


async def run(args) -> None:
    if not NGINX.exists():
        raise SystemExit(f"{NGINX} is missing: install Debian's nginx package")
    model, model_url = await start_model(args.pieces)
    processes = start_processes(model_url, 3)
    work = Path(tempfile.mkdtemp(prefix="chatserver-bench-nginx-"))
    setups = {"one process": processes[:1], "three processes": processes}
    proxies = {name: NginxProxy(work / name.replace(" ", "-"), [port for _, port in behind])
               for name, behind in setups.items()}
    totals = {name: {"pieces": 0, "frames": 0.0, "elapsed": 0.0} for name in setups}
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as http:
            for name, proxy in proxies.items():
                await proxy.start()
                await one_round(http, proxy.url, 6, f"warm-{name[:3]}-")
            # the setups take turns, so a change in the machine's load touches both
            for round_no in range(args.rounds):
                for name, proxy in proxies.items():
                    result = await one_round(http, proxy.url, args.clients, f"q{round_no}-{name[:3]}-")
                    for field in totals[name]:
                        totals[name][field] += result[field]
    finally:
        for proxy in proxies.values():
            proxy.stop()
        for proc, _ in processes:
            proc.terminate()
        for proc, _ in processes:
            proc.wait()
        model.terminate()
        model.wait()

    print(f"{args.clients} clients at once through nginx (a third each on the WebSocket, SSE and /v1), "
          f"{args.pieces} pieces per answer, model flat out, {args.rounds} round(s) each, taking turns")
    print(f"{'setup':<16} {'pieces':>7} {'seconds':>8} {'pieces/s':>9} {'frames/s':>9} {'ratio':>6}")
    rate = {name: t["pieces"] / t["elapsed"] for name, t in totals.items()}
    for name, t in totals.items():
        print(f"{name:<16} {t['pieces']:>7} {t['elapsed']:>8.2f} {rate[name]:>9.0f} "
              f"{t['frames'] / t['elapsed']:>9.0f} {rate[name] / rate['one process']:>5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=60, help="clients at once (default 60)")
    parser.add_argument("--pieces", type=int, default=200, help="model deltas per answer (default 200)")
    parser.add_argument("--rounds", type=int, default=2, help="measured rounds per setup (default 2)")
    parser.add_argument("--serve-model", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model:
        serve_model(args.serve_model, args.pieces)
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
