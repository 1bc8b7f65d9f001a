"""What a test client's server holds: its application and its database."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from chatserver import appkeys


def app_of(client: TestClient) -> web.Application:
    return client.server.app


def db_of(client: TestClient):
    return client.server.app[appkeys.DB]
