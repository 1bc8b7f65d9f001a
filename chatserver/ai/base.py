"""The one interface every AI backend implements, and the failures it reports.

A backend is a subclass of `Backend` declaring what makes it differ: its
`name` (the AI_BACKEND value), the settings it `needs`, the line the start-up
log gives it, the models a chat may name and the default, whether it is
`remote`, how many answers one process generates at once, its token budget,
and `generate()`. registry.py lists them and
picks one; nothing else knows their names.

`generate(context, write)` either streams the answer itself, awaiting
`write(text)` for every piece and returning the sources it used (a list) or a
`Result` that also says how and by which model the answer ended, or
(`remote = True`) hands the request to a service that answers through the
callback endpoint, and returns None once the service accepted it. It turns
one request into pieces; deciding what to do with them is the job's.

A backend that `calls_tools` sends the context's tool_specs and tool_turns
and returns the calls the model asked for; running them is the job's
(tool_loop.py).

Besides being called with the answer's text, `write` takes the model's
reasoning (`write.reasoning(text)`) and tells watchers the backend waits to
try again (`write.retrying(attempt)`).
"""

from __future__ import annotations

import abc
import dataclasses
import json
from typing import ClassVar, Protocol
from urllib.parse import urlsplit

import aiohttp

from chatserver.ai.context import Context
from chatserver.config import Settings
from chatserver.db import Database


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
    # the model asked for these calls instead of ending: [{"id", "name", "arguments" (JSON text)}],
    # with `text` what it said before them (tool_loop.py runs them and asks again)
    tool_calls: list[dict] = dataclasses.field(default_factory=list)
    text: str = ""


class BackendRejected(Exception):
    """The backend refused the request (a 4xx): retrying cannot help."""


class BackendUnavailable(Exception):
    """The backend could not be reached or failed (5xx): worth a retry."""


class BackendFailed(Exception):
    """The backend broke off an answer it had started."""


class Backend(abc.ABC):
    # the AI_BACKEND value, and each model's `backend` in the model list
    name: ClassVar[str]
    # settings that must be set for it to work; with AI_BACKEND empty, the
    # registry picks the first backend whose settings are all set
    needs: ClassVar[tuple[str, ...]]
    # answers through the callback endpoint instead of streaming them itself
    remote: ClassVar[bool]
    # sends context.tool_specs to the model and returns its tool calls in Result.tool_calls
    calls_tools: ClassVar[bool] = False
    # answers one process generates at once unless QUEUE_AI_CONCURRENCY says otherwise: a model
    # server elsewhere bounds itself (its waiting answers cost this process a socket each), an
    # in-process backend spends this process's own CPU and PostgreSQL connections
    answers_at_once: ClassVar[int]

    def __init__(self, settings: Settings, db: Database, session: aiohttp.ClientSession):
        self.settings, self.db, self.session = settings, db, session

    @classmethod
    @abc.abstractmethod
    def startup_line(cls, settings: Settings) -> str:
        """What the start-up log says answers (after "AI: "), without credentials."""

    @abc.abstractmethod
    async def models(self) -> list[str]:
        """The model ids a chat may name."""

    @abc.abstractmethod
    def default_model(self) -> str:
        """The model of a chat that names none."""

    @abc.abstractmethod
    def token_budget(self) -> int | None:
        """The most tokens of system prompt, history, files and question one
        request may hold, or None to cut them by characters instead
        (HISTORY_CHAR_BUDGET, FILE_CONTEXT_CHAR_BUDGET)."""

    @abc.abstractmethod
    async def generate(self, context: Context, write: Write) -> list[dict] | Result | None: ...


def origin(url: str) -> str:
    """A URL without its credentials, query or fragment."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "") + parts.path


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
