"""Helpers shared by the benchmarks: start `run.py` in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from support.net import free_port  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a process spent so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def server_env(port: int, **extra: str) -> dict[str, str]:
    """Local PostgreSQL/Redis at their default ports when they answer, else embedded ones.
    Call it once per server: the database is emptied each time."""
    data = tempfile.mkdtemp(prefix="chatserver-bench-")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "APP_HOST": "127.0.0.1", "APP_PORT": str(port),
           "LOG_LEVEL": "WARNING", "DATA_DIR": data, "UPLOAD_DIR": f"{data}/uploads",
           "REDIS_KEY_PREFIX": f"bench:{uuid.uuid4().hex[:8]}"}
    # every benchmark client comes from 127.0.0.1 and posts far faster than a person
    env |= {key: "0" for key in ("RATE_LIMIT_LOGIN", "RATE_LIMIT_LOGIN_ADDRESS", "RATE_LIMIT_REGISTER",
                                 "RATE_LIMIT_MESSAGES", "RATE_LIMIT_UPLOADS")}
    if _answers(5432):
        # a database per benchmark, emptied at each start: answers another run
        # left streaming would be failed by this server's first sweeps, in the
        # middle of the measurement
        # (a caller naming its own database, as scale.py does, has built it already)
        name = extra.get("DB_NAME") or f"chatserver_bench_{Path(sys.argv[0]).stem}"
        if "DB_NAME" not in extra:
            fresh_database(name)
        env |= {"DB_HOST": "127.0.0.1", "DB_NAME": name}
    if _answers(6379):
        env["REDIS_HOST"] = "127.0.0.1"
    return env | extra


def spawn(argv: list[str], port: int, env: dict[str, str] | None = None, timeout: float = 90,
          cwd: Path = ROOT, cpus: set[int] | None = None) -> subprocess.Popen:
    """Start a server process (on `cpus` alone, when given: every thread it starts inherits them) and wait
    until its /ready answers."""
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    proc = subprocess.Popen(argv, env=env, cwd=cwd, preexec_fn=pin)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{' '.join(argv)} did not start")


def start_server(root: Path = ROOT, *, cpus: set[int] | None = None, **extra: str) -> tuple[subprocess.Popen, int]:
    """`run.py` of the checkout at `root` (this one unless told, importing its own chatserver), on `cpus`
    when given."""
    port = free_port()
    return spawn([sys.executable, str(root / "run.py")], port, server_env(port, **extra), cwd=root, cpus=cpus), port


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def fresh_database(name: str) -> None:
    """An empty database `name` on the local PostgreSQL: a benchmark's figures
    must not depend on what other benchmarks left behind."""
    import psycopg2
    conn = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


async def serve_fake_service(handle) -> tuple[web.AppRunner, str]:
    """A fake AI service on a free port whose `POST /generate` is `handle`; its runner and URL."""
    fake = web.Application()
    fake.router.add_post("/generate", handle)
    runner = web.AppRunner(fake, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/generate"


async def stream_contents(resp: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The content deltas of an OpenAI-style stream (`data:` lines up to [DONE]), each as it
    arrives; an error chunk raises."""
    async for line in resp.content:
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            return
        chunk = orjson.loads(data)
        if "error" in chunk:
            raise RuntimeError(chunk["error"]["message"])
        for choice in chunk["choices"]:
            content = choice["delta"].get("content")
            if content:
                yield content
