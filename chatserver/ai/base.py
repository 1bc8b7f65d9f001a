"""The one interface every AI backend implements, and the failures it reports.

`generate(context, write)` either streams the answer itself, awaiting
`write(text)` for every piece and returning the sources it used (a list) or a
`Result` that also says how and by which model the answer ended, or
(`remote = True`) hands the request to a service that answers through the
callback endpoint, and returns None once the service accepted it.

Besides being called with the answer's text, `write` takes the model's
reasoning (`write.reasoning(text)`) and tells watchers the backend waits to
try again (`write.retrying(attempt)`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Protocol

import aiohttp

from chatserver.ai.context import Context


class Write(Protocol):
    async def __call__(self, text: str) -> None: ...

    async def reasoning(self, text: str) -> None: ...

    async def retrying(self, attempt: int) -> None: ...


@dataclasses.dataclass
class Result:
    sources: list[dict] = dataclasses.field(default_factory=list)
    finish_reason: str | None = None  # "stop" or "length"
    usage: dict | None = None  # {"prompt_tokens", "completion_tokens"}
    model: str | None = None


class BackendRejected(Exception):
    """The backend refused the request (a 4xx): retrying cannot help."""


class BackendUnavailable(Exception):
    """The backend could not be reached or failed (5xx): worth a retry."""


class BackendFailed(Exception):
    """The backend broke off an answer it had started."""


class Backend(Protocol):
    remote: bool

    async def generate(self, context: Context, write: Write) -> list[dict] | Result | None: ...


def describe(exc: BaseException, what: str) -> str:
    """A connection failure in words a user can act on, never an exception class name."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror if exc.os_error and exc.os_error.strerror else str(exc.os_error or exc)
        return f"could not connect to {what} at {exc.host}:{exc.port} ({reason.lower()})"
    if isinstance(exc, TimeoutError):
        return f"{what} did not answer in time"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{what} closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the connection to {what} broke off"
    return f"{what} could not be reached ({str(exc) or 'connection error'})"


async def error_text(resp: aiohttp.ClientResponse) -> str:
    """`HTTP <status>: <the server's own message>`, from an OpenAI-style error body when there is one."""
    message = ""
    try:
        raw = await resp.content.read(64 * 1024)
        text = raw.decode("utf-8", "replace").strip()
    except (aiohttp.ClientError, TimeoutError):
        text = ""
    if text:
        try:
            body = json.loads(text)
        except ValueError:
            message = text[:500]
        else:
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                message = str(error.get("message") or error.get("code") or "")
            elif isinstance(error, str):
                message = error
            elif isinstance(body, dict) and isinstance(body.get("detail"), str):
                message = body["detail"]
            elif isinstance(body, dict) and isinstance(body.get("message"), str):
                message = body["message"]
    reason = message or resp.reason or ""
    return f"HTTP {resp.status}: {reason}" if reason else f"HTTP {resp.status}"
