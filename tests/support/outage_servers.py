"""Servers the outage tests start, stop and start again themselves: a
redis-server on a free port and a PostgreSQL cluster in a temp folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

import psycopg2

from chatserver.migrate import apply_migrations
from support.net import free_port


class RedisServer:
    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # the append-only file keeps every write across the restart
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class PostgresServer:
    """A pgserver cluster of its own (it runs as a system user when we are root)."""

    def __init__(self, folder: Path):
        with warnings.catch_warnings():
            # platformdirs warns about a missing XDG_RUNTIME_DIR when pgserver is imported
            warnings.simplefilter("ignore")
            import pgserver

        self.server = pgserver.get_server(folder, cleanup_mode="stop")
        admin = self.server.get_uri("postgres")
        conn = psycopg2.connect(admin)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE chatserver_outage")
        conn.close()
        self.dsn = self.server.get_uri("chatserver_outage")
        apply_migrations(self.dsn)

    def stop(self) -> None:
        import pgserver

        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def _processes(self) -> list[int]:
        """The postmaster and every process it started (backends, writers)."""
        postmaster = self.server.get_pid()
        assert postmaster is not None, "the cluster runs"
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if parent == postmaster:
                    children.append(int(entry.name))
        return [postmaster, *children]

    def hang(self) -> None:
        """SIGSTOP the cluster: connections are still accepted (by the
        kernel), but nothing answers, as with a hung or swamped server."""
        for pid in self._processes():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._processes():
            os.kill(pid, signal.SIGCONT)

    def close(self) -> None:
        self.server.cleanup()
