"""`python run.py` on a machine with nothing configured: embedded PostgreSQL
and Redis under DATA_DIR, data kept across restarts, clean SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import TESTS_DIR
from net_support import free_port


def call(port, method, path, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Server:
    def __init__(self, data_dir, port):
        env = {"PATH": os.environ["PATH"], "DATA_DIR": str(data_dir), "UPLOAD_DIR": str(data_dir / "uploads"),
               "APP_PORT": str(port), "APP_HOST": "127.0.0.1", "SHUTDOWN_GRACE_SECONDS": "5"}
        self.log = data_dir / f"server-{port}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, str(TESTS_DIR.parent / "run.py")], env=env,
                                         cwd=data_dir, stdout=out, stderr=subprocess.STDOUT)
        self.port = port
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if call(port, "GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
            if self.proc.poll() is not None:
                break
        raise AssertionError("server did not start:\n" + self.log.read_text())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.mark.timeout(240)
def test_fresh_run_uses_embedded_servers_and_keeps_data_across_restarts(tmp_path):
    port = free_port()
    server = Server(tmp_path, port)
    try:
        status, body = call(port, "POST", "/api/auth/register", {"email": "keep@example.com", "password": "password123"})
        assert status == 201
    finally:
        code = server.stop()
    assert code == 0
    log = server.log.read_text()
    assert "using embedded PostgreSQL" in log and "using embedded Redis" in log
    assert "job queue stopped" in log

    server = Server(tmp_path, port)
    try:
        status, body = call(port, "POST", "/api/auth/login", {"email": "keep@example.com", "password": "password123"})
        assert status == 200
        assert call(port, "GET", "/ready")[0] == 200
    finally:
        assert server.stop() == 0
