"""MCP_SERVERS read and checked: the servers the operator lists (docs/tools.md).
Plain JSON checks, so the settings can be validated without the MCP SDK."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

SERVER_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,32}$")


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    name: str
    url: str = ""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    command: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None


def parse_servers(raw: str) -> list[ServerConfig]:
    """MCP_SERVERS as configs; ValueError saying what is wrong."""
    if not raw.strip():
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        raise ValueError("not valid JSON (expected a list of servers)") from None
    if not isinstance(items, list):
        raise ValueError("expected a JSON list of servers")
    found: list[ServerConfig] = []
    for i, item in enumerate(items):
        where = f"server {i + 1}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object")
        name = item.get("name")
        if not isinstance(name, str) or not SERVER_NAME.match(name):
            raise ValueError(f"{where}: `name` must be 1 to 32 letters, digits, _ or -")
        if any(s.name == name for s in found):
            raise ValueError(f"{where}: the name {name!r} is used twice")
        url, command = item.get("url"), item.get("command")
        if bool(url) == bool(command):
            raise ValueError(f"{name}: give either `url` (Streamable HTTP) or `command` (stdio)")
        headers, args, env = item.get("headers") or {}, item.get("args") or [], item.get("env")
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            raise ValueError(f"{name}: `url` must be an http(s) URL")
        if command is not None and not isinstance(command, str):
            raise ValueError(f"{name}: `command` must be a string")
        if not _strings(headers):
            raise ValueError(f"{name}: `headers` must be an object of strings")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ValueError(f"{name}: `args` must be a list of strings")
        if env is not None and not _strings(env):
            raise ValueError(f"{name}: `env` must be an object of strings")
        found.append(ServerConfig(name, url or "", headers, command or "", tuple(args), env))
    return found


def _strings(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
