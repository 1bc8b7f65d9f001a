"""What a test client's server holds: its application and its database."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chatserver import appkeys
from chatserver.api.server import JsonErrorsRunner


def app_of(client: TestClient) -> web.Application:
    return client.server.app


def db_of(client: TestClient):
    return client.server.app[appkeys.DB]


class ServedLikeRunPy(TestServer):
    """A test server whose connections answer HTTP-level errors as run.py's do."""

    async def _make_runner(self, **kwargs: Any) -> JsonErrorsRunner:
        return JsonErrorsRunner(self.app, **kwargs)
