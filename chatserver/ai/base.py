"""The one interface every AI backend implements, and the failures it reports.

`generate(context, write)` either streams the answer itself, awaiting
`write(text)` for every piece and returning the sources it used, or
(`remote = True`) hands the request to a service that answers through the
callback endpoint, and returns None once the service accepted it.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Protocol

from chatserver.ai.context import Context

Write = Callable[[str], Awaitable[None]]


class BackendRejected(Exception):
    """The backend refused the request (a 4xx): retrying cannot help."""


class BackendUnavailable(Exception):
    """The backend could not be reached or failed (5xx): worth a retry."""


class BackendFailed(Exception):
    """The backend broke off an answer it had started."""


class Backend(Protocol):
    remote: bool

    async def generate(self, context: Context, write: Write) -> list[dict] | None: ...
