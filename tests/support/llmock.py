"""llmock (a third-party OpenAI-compatible mock server with fault injection,
from PyPI) run as a real process on a free port, and scripted over its
`/_llmock` control API."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

from support.net import free_port

REPLY = "One two three four five."


class LLMock:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        executable = Path(sys.executable).parent / "llmock"
        self.process = subprocess.Popen([str(executable), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                                         "--log-level", "warning"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.url + "/_llmock/scenario", timeout=5)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("llmock did not start") from None
                time.sleep(0.2)

    def script(self, *behaviors: dict) -> None:
        """Forget earlier requests; the next ones meet `behaviors`, and answer REPLY unless told otherwise."""
        requests.post(self.url + "/_llmock/reset", timeout=5).raise_for_status()
        requests.post(self.url + "/_llmock/scenario", timeout=5,
                      json={"behaviors": [*behaviors, {"type": "reply", "text": REPLY, "times": None}]}
                      ).raise_for_status()

    def bodies(self) -> list[dict]:
        """The bodies of the chat-completion requests served since the last script()."""
        records = requests.get(self.url + "/_llmock/requests", timeout=10).json()["requests"]
        return [r["body"] for r in records if r["path"].endswith("/chat/completions")]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
