"""The few lines the server logs when it starts: which servers it uses, which
AI answers, where the data lives and where to point a browser."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from chatserver import appkeys
from chatserver.ai.registry import chosen
from chatserver.config import Settings
from chatserver.embedded import LOG_FILE

log = logging.getLogger("chatserver")


async def log_summary(app: web.Application) -> None:
    for line in summary(app[appkeys.SETTINGS], app[appkeys.DSN], app[appkeys.REDIS_URL]):
        log.info("%s", line)


def summary(settings: Settings, dsn: str, redis_url: str) -> list[str]:
    data = Path(settings.DATA_DIR).resolve()
    lines = [
        f"PostgreSQL: embedded, data in {data / 'postgres'}" if settings.embedded_postgres
        else f"PostgreSQL: {_where(dsn)}",
        f"Redis: embedded, data in {data / 'redis'}" if settings.embedded_redis else f"Redis: {_where(redis_url)}",
        f"AI: {chosen(settings).startup_line(settings)}",
        f"uploads in {Path(settings.UPLOAD_DIR).resolve()}",
    ]
    if settings.embedded_postgres or settings.embedded_redis:
        lines.append(f"the embedded servers' own log: {data / LOG_FILE}")
    host = "localhost" if settings.APP_HOST in ("", "0.0.0.0", "::") else settings.APP_HOST
    base = f"http://{host}:{settings.APP_PORT}"
    lines.append(f"web client at {base}/ and the API docs at {base}/docs")
    return lines


def _where(url: str) -> str:
    """host:port/database of a URL, without its credentials."""
    parts = urlsplit(url)
    return (parts.hostname or "") + (f":{parts.port}" if parts.port else "") + parts.path

