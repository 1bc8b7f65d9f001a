"""`python run.py` on a machine with nothing configured: embedded PostgreSQL
and Redis under DATA_DIR, data kept across restarts, clean SIGTERM."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from support.fake_openai import FakeOpenAI
from support.net import free_port
from support.paths import TESTS_DIR
from support.run_process import start_run_py


def call(port, method, path, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


RUN_PY = TESTS_DIR.parent / "run.py"


def environment(data_dir, port) -> dict[str, str]:
    """Nothing configured but where the data goes and where to listen."""
    return {"PATH": os.environ["PATH"], "DATA_DIR": str(data_dir), "UPLOAD_DIR": str(data_dir / "uploads"),
            "APP_PORT": str(port), "APP_HOST": "127.0.0.1", "SHUTDOWN_GRACE_SECONDS": "5"}


class Server:
    def __init__(self, data_dir, port):
        env = environment(data_dir, port)
        self.log = data_dir / f"server-{port}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, str(RUN_PY)], env=env,
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

    def stop(self, sig=signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


def running_under(folder) -> list[str]:
    """Command lines of the processes (postgres, redis-server) that name the folder."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            # the folder is the test's own tmp_path, which only the servers started in it name
            if str(folder) in cmdline:
                found.append(cmdline)
    return found


def gone(folder, seconds=30) -> list[str]:
    """What still runs under the folder once it had time to stop."""
    deadline = time.monotonic() + seconds
    while (left := running_under(folder)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def watchdogs(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        children = [int(c) for c in fh.read().split()]
    return [c for c in children if b"stdin.buffer.read" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.timeout(240)
def test_fresh_run_uses_embedded_servers_and_keeps_data_across_restarts(tmp_path):
    port = free_port()
    server = Server(tmp_path, port)
    try:
        status, body = call(port, "POST", "/api/auth/register",
                            {"email": "keep@example.com", "password": "password123"})
        assert status == 201
    finally:
        code = server.stop()
    assert code == 0
    log = server.log.read_text()
    assert "PostgreSQL: embedded" in log and "Redis: embedded" in log
    assert "job queue stopped" in log

    server = Server(tmp_path, port)
    try:
        status, body = call(port, "POST", "/api/auth/login", {"email": "keep@example.com", "password": "password123"})
        assert status == 200
        assert call(port, "GET", "/ready")[0] == 200
    finally:
        assert server.stop() == 0


@pytest.mark.timeout(120)
def test_first_start_says_in_a_few_lines_what_runs_where_and_nothing_from_initdb(tmp_path):
    port = free_port()
    server = Server(tmp_path, port)
    server.stop()
    console = server.log.read_text()
    for line in ("PostgreSQL: embedded, data in " + str(tmp_path / "postgres"),
                 "Redis: embedded, data in " + str(tmp_path / "redis"),
                 "AI: the built-in search, not a language model",
                 "uploads in " + str(tmp_path / "uploads"),
                 "the embedded servers' own log: " + str(tmp_path / "embedded.log"),
                 f"web client at http://127.0.0.1:{port}/ and the API docs at http://127.0.0.1:{port}/docs"):
        assert line in console
    for chatter in ("initdb", "pg_ctl", "PostmasterInfo", "XDG_RUNTIME_DIR", "Success", "Warning", "yoyo"):
        assert chatter not in console
    assert "vectors: " in console  # which search the knowledge uses, in one line too
    assert len(console.splitlines()) <= 13
    assert "initdb" in (tmp_path / "embedded.log").read_text()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_the_embedded_servers_stop_with_the_server(tmp_path, sig):
    server = Server(tmp_path, free_port())
    try:
        assert any("redis-server" in c for c in running_under(tmp_path))
        assert any("postgres" in c for c in running_under(tmp_path))
    finally:
        server.stop(sig)
    assert gone(tmp_path) == []


@pytest.mark.timeout(240)
def test_servers_left_by_a_crash_that_took_the_watchdogs_too_are_stopped_at_the_next_start(tmp_path):
    port = free_port()
    server = Server(tmp_path, port)
    for pid in watchdogs(server.proc.pid):
        os.kill(pid, signal.SIGKILL)
    server.stop(signal.SIGKILL)
    assert len(running_under(tmp_path)) == 2

    server = Server(tmp_path, port)
    try:
        console = server.log.read_text()
        assert "stopping the embedded PostgreSQL" in console and "stopping the embedded Redis" in console
        assert call(port, "GET", "/ready")[0] == 200
    finally:
        assert server.stop() == 0
    assert gone(tmp_path) == []


@pytest.mark.timeout(240)
def test_a_second_server_on_the_same_data_dir_refuses_in_one_line(tmp_path):
    server = Server(tmp_path, free_port())
    try:
        second = subprocess.run([sys.executable, str(RUN_PY)], env=environment(tmp_path, free_port()),
                                cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert call(server.port, "GET", "/ready")[0] == 200
    finally:
        assert server.stop() == 0
    assert second.returncode == 1
    assert (second.stdout + second.stderr).splitlines() == [
        f"error: {tmp_path / 'postgres'} is in use by another running chatserver"]


@pytest.mark.timeout(120)
async def test_ctrl_c_during_an_answer_says_at_once_how_many_jobs_it_waits_for_and_how_long(
        tmp_path, servers, redis_prefix, fake_service):
    held = asyncio.Event()
    model = FakeOpenAI(hold=held)
    model_server = await fake_service(model.app)
    proc, base = await start_run_py(tmp_path, servers, redis_prefix, LOG_LEVEL="INFO", SHUTDOWN_GRACE_SECONDS="30",
                                    OPENAI_BASE_URL=str(model_server.make_url("/v1")), OPENAI_API_KEY="sk-test",
                                    OPENAI_MODEL="test-model")
    log = tmp_path / f"server-{base.rsplit(':', 1)[1]}.log"
    interrupted = False
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/auth/register", json={
                    "email": f"ctrl-c-{redis_prefix[-8:]}@example.com", "password": "password123"}) as resp:
                headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
            async with http.post(f"{base}/api/chats", json={"title": "held"}, headers=headers) as resp:
                chat = await resp.json()
            async with http.post(f"{base}/api/chats/{chat['id']}/messages", json={"content": "hold on"},
                                 headers=headers) as resp:
                assert resp.status == 201
        await _until(lambda: model.requests_about("hold on"))
        proc.send_signal(signal.SIGINT)
        interrupted = True
        # the model holds the answer until released: the queue cannot have stopped yet
        await _until(lambda: "job queue stopping" in log.read_text())
        console = log.read_text()
        assert "job queue stopping: waiting for 1 running job(s), 30 s at most" in console
        assert "job queue stopped" not in console
    finally:
        held.set()
        if not interrupted:  # a failure before the Ctrl-C must not leave the server running
            proc.kill()
        code = await asyncio.to_thread(proc.wait, 60)
    assert code == 0
    assert "job queue stopped" in log.read_text()


@pytest.mark.timeout(120)
async def test_ctrl_c_closes_open_websockets_at_once_as_going_away(tmp_path, servers, redis_prefix):
    """An open socket must not hold the shutdown until the grace period ends:
    it is told at once (1001) and the process says how many it closed."""
    proc, base = await start_run_py(tmp_path, servers, redis_prefix, LOG_LEVEL="INFO", SHUTDOWN_GRACE_SECONDS="60")
    log = tmp_path / f"server-{base.rsplit(':', 1)[1]}.log"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/auth/register", json={
                    "email": f"socket-{redis_prefix[-8:]}@example.com", "password": "password123"}) as resp:
                token = (await resp.json())["access_token"]
            async with http.post(f"{base}/api/chats", json={"title": "open"},
                                 headers={"Authorization": f"Bearer {token}"}) as resp:
                chat = await resp.json()
            async with http.ws_connect(f"{base}/ws/chat/{chat['id']}?token={token}") as ws:
                await ws.send_json({"type": "ping", "timestamp": 1})
                assert (await ws.receive_json(timeout=30))["type"] == "pong"
                proc.send_signal(signal.SIGINT)
                closing = await ws.receive(timeout=30)
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
                assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
    finally:
        code = await asyncio.to_thread(proc.wait, 60)
    assert code == 0
    assert "closing 1 open WebSocket(s)" in log.read_text()


async def _until(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def pid_under(folder, program: str) -> int | None:
    """The pid of the one process running `program` that names the folder (see running_under)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    argv = fh.read().split(b"\0")
            except OSError:
                continue
            # Redis rewrites its title to "<path>/redis-server unixsocket:<socket>"
            if argv[0].split(b" ")[0].endswith(program.encode()) and any(str(folder).encode() in arg for arg in argv):
                return int(entry)
    return None


def ready_again(port, seconds=60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if call(port, "GET", "/ready")[0] == 200:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(300)
@pytest.mark.parametrize("program", ["redis-server", "postgres"])
def test_an_embedded_server_killed_under_the_server_is_started_again(tmp_path, program):
    port = free_port()
    server = Server(tmp_path, port)
    try:
        status, _ = call(port, "POST", "/api/auth/register", {"email": "kept@example.com", "password": "password123"})
        assert status == 201
        killed = pid_under(tmp_path, program)
        assert killed is not None
        os.kill(killed, signal.SIGKILL)  # only the server this test started, found by its own folder

        deadline = time.monotonic() + 60
        while pid_under(tmp_path, program) in (None, killed) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pid_under(tmp_path, program) not in (None, killed)
        assert ready_again(port)
        assert call(port, "POST", "/api/auth/login", {"email": "kept@example.com", "password": "password123"})[0] == 200
        assert call(port, "GET", "/health")[0] == 200
    finally:
        assert server.stop() == 0
    assert f"the embedded {'Redis' if program == 'redis-server' else 'PostgreSQL'} (pid {killed}) stopped" \
        in server.log.read_text()
    assert gone(tmp_path) == []


def health_is(port, status, seconds=60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if call(port, "GET", "/health")[0] == status:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(300)
def test_health_is_503_while_a_dead_embedded_server_cannot_be_started_again(tmp_path):
    port = free_port()
    server = Server(tmp_path, port)
    try:
        # the running Redis keeps its folder under another name; a file in the way stops a new one
        folder = tmp_path / "redis"
        folder.rename(tmp_path / "redis-aside")
        folder.write_text("in the way")
        os.kill(pid_under(tmp_path, "redis-server"), signal.SIGKILL)
        assert health_is(port, 503)
        status, body = call(port, "GET", "/health")
        assert body["code"] == "unhealthy" and "Redis" in body["error"]

        folder.unlink()
        (tmp_path / "redis-aside").rename(folder)
        assert health_is(port, 200)
        assert ready_again(port)
    finally:
        assert server.stop() == 0
    assert "the embedded Redis did not start again" in server.log.read_text()
    assert gone(tmp_path) == []
