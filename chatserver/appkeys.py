"""Typed keys for what the application holds (settings, pools, workers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis.asyncio as redis_async
from aiohttp import web

from chatserver.config import Settings
from chatserver.db import Database
from chatserver.embedded import Keeper
from chatserver.jobs.queue import JobQueue
from chatserver.jobs.worker import Worker
from chatserver.metrics import Metrics
from chatserver.redis_keys import Keys

if TYPE_CHECKING:
    # both modules import appkeys, so their classes are named for mypy only
    from chatserver.files.preview_service import PreviewService
    from chatserver.files.storage import Storage

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
REDIS = web.AppKey("redis", redis_async.Redis)
KEYS = web.AppKey("keys", Keys)
QUEUE = web.AppKey("queue", JobQueue)
WORKER = web.AppKey("worker", Worker)
METRICS = web.AppKey("metrics", Metrics)
STORAGE: web.AppKey[Storage] = web.AppKey("storage")
# None when no PREVIEW_SERVICE_URL is set: the built-in extractor runs instead
PREVIEW_SERVICE: web.AppKey[PreviewService | None] = web.AppKey("preview_service")
# where the servers really are once embedded ones have started
DSN = web.AppKey("dsn", str)
REDIS_URL = web.AppKey("redis_url", str)
# what keeps the embedded servers running (none with external servers)
KEEPERS = web.AppKey("keepers", list[Keeper])
