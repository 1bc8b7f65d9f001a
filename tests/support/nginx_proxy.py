"""Debian's nginx in front of `run.py` processes, configured by deploy/nginx.conf.

The server block of deploy/nginx.conf is used as written, with only what
names the containers replaced: the port it listens on, and the `app`
replicas, which become an upstream group of the given ports. Around it goes
a main configuration of the caller's own: nginx in the foreground as a child
process (`daemon off`), as the current user, its pid file, error log and
temporary files under the caller's directory.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import subprocess
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from support.net import free_port

NGINX = Path("/usr/sbin/nginx")
DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
REPLICAS = "chatserver_replicas"
TEMP_PATHS = ("client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path",
              "scgi_temp_path")


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:
        raise AssertionError(f"{DEPLOY_CONFIG} no longer holds {old!r} once: update {__name__} to match it")
    return text.replace(old, new)


def proxy_config(port: int, app_ports: Sequence[int], work: Path) -> str:
    """The whole nginx.conf: deploy's server block on 127.0.0.1:`port` in front of `app_ports`."""
    server = DEPLOY_CONFIG.read_text()
    server = _replace_once(server, "listen 8080;", f"listen 127.0.0.1:{port};")
    # nginx looks a proxied host up among the upstream groups before asking the resolver
    server = _replace_once(server, "http://app:8000", f"http://{REPLICAS}")
    replicas = "".join(f"        server 127.0.0.1:{app_port};\n" for app_port in app_ports)
    temp = "".join(f"    {name} {work / name};\n" for name in TEMP_PATHS)
    # the `user` directive means something only to a master process running as root
    user = (f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"
            if os.geteuid() == 0 else "")
    return (f"daemon off;\n{user}worker_processes 1;\npid {work / 'nginx.pid'};\n"
            f"error_log {work / 'error.log'} warn;\n"
            "events {\n    worker_connections 4096;\n}\n"
            f"http {{\n    access_log off;\n{temp}"
            f"    upstream {REPLICAS} {{\n{replicas}    }}\n\n{server}}}\n")


class NginxProxy:
    """nginx as a child process in front of `app_ports`; `url` is its address."""

    def __init__(self, work: Path, app_ports: Sequence[int]):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = work / "nginx.conf"
        self.config.write_text(proxy_config(self.port, app_ports, work))
        self.process: subprocess.Popen | None = None

    def log(self) -> str:
        path = self.work / "error.log"
        return path.read_text() if path.exists() else ""

    async def start(self) -> None:
        """Start nginx and return once a request through it reaches a replica."""
        self.process = subprocess.Popen([str(NGINX), "-p", str(self.work), "-e", str(self.work / "error.log"),
                                         "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                assert self.process.poll() is None, f"nginx stopped:\n{self.log()}"
                try:
                    async with session.get(f"{self.url}/health") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        self.stop()
        raise AssertionError(f"nginx did not answer:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
