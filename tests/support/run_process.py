"""`run.py` as a real second server process, sharing the test's PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp

from support.net import free_port

RUN_PY = Path(__file__).resolve().parents[2] / "run.py"


async def start_run_py(tmp_path: Path, servers: dict, redis_prefix: str,
                       **settings: str) -> tuple[subprocess.Popen, str]:
    """A started `run.py` and its base URL; the caller stops it."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "APP_HOST": "127.0.0.1", "APP_PORT": str(port),
           "DATABASE_URL": servers["dsn"], "REDIS_URL": servers["redis_url"], "REDIS_KEY_PREFIX": redis_prefix,
           "LOG_LEVEL": "WARNING", "DATA_DIR": str(tmp_path / "var"), "UPLOAD_DIR": str(tmp_path / "uploads"),
           "SHUTDOWN_GRACE_SECONDS": "2", **settings}
    log_path = tmp_path / f"server-{port}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(RUN_PY)], env=env, cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{base}/ready") as resp:
                    if resp.status == 200:
                        return proc, base
            except aiohttp.ClientError:
                pass
            assert proc.poll() is None, log_path.read_text()
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")
