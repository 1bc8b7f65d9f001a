"""create_app(settings): the only way the application is built.

Read top to bottom: resources (in start-up order), middlewares (outermost
first), then the route table, one module per resource.
"""

from __future__ import annotations

import contextlib
import logging

import redis.asyncio as redis_async
from aiohttp import web

from . import answers, appkeys, auth, callback, chats, files, messages, ops, ws
from .ai import ai_ctx
from .config import Settings
from .db import open_database, settings_dsn
from .embedded import embedded_postgres, embedded_redis
from .errors import error_middleware
from .fanout import fanout_ctx
from .keys import Keys
from .metrics import Metrics
from .middleware import access_middleware, cors_middleware
from .migrate import apply_migrations_async
from .preview.service import preview_service_ctx
from .queue import JobQueue
from .storage import storage_ctx
from .streams import streams_ctx
from .workers import register_tasks
from . import webclient

log = logging.getLogger(__name__)


async def servers_ctx(app: web.Application):
    """Use the configured servers, or start embedded ones under DATA_DIR."""
    settings = app[appkeys.SETTINGS]
    with contextlib.ExitStack() as stack:
        if settings.embedded_postgres:
            app[appkeys.DSN] = stack.enter_context(embedded_postgres(settings.DATA_DIR, settings.DB_NAME))
        else:
            app[appkeys.DSN] = settings_dsn(settings)
            log.info("using PostgreSQL at %s", app[appkeys.DSN].rsplit("@", 1)[-1])
        if settings.embedded_redis:
            app[appkeys.REDIS_URL] = stack.enter_context(embedded_redis(settings.DATA_DIR))
        else:
            app[appkeys.REDIS_URL] = settings.REDIS_URL or (
                f"redis://{settings.REDIS_HOST}:{settings.REDIS_PORT}/{settings.REDIS_DB}")
            log.info("using Redis at %s", app[appkeys.REDIS_URL].rsplit("@", 1)[-1])
        yield


async def database_ctx(app: web.Application):
    await apply_migrations_async(app[appkeys.DSN])
    db = await open_database(app[appkeys.DSN], app[appkeys.SETTINGS])
    app[appkeys.DB] = db
    yield
    db.pool.close()
    await db.pool.wait_closed()


async def redis_ctx(app: web.Application):
    client = redis_async.Redis.from_url(app[appkeys.REDIS_URL], decode_responses=True,
                                     health_check_interval=30)
    app[appkeys.REDIS] = client
    yield
    await client.aclose()


async def queue_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    queue = JobQueue(
        app[appkeys.REDIS],
        app[appkeys.KEYS],
        {"ai": settings.QUEUE_AI_CONCURRENCY, "preview": settings.QUEUE_PREVIEW_CONCURRENCY},
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        retry_base=settings.JOB_RETRY_BASE_SECONDS,
        lease_seconds=settings.JOB_LEASE_SECONDS,
        grace_seconds=settings.SHUTDOWN_GRACE_SECONDS,
        poll_seconds=settings.QUEUE_POLL_SECONDS,
    )
    app[appkeys.QUEUE] = queue
    register_tasks(app, queue)
    if app[START_WORKERS]:
        await queue.start()
    yield
    if app[START_WORKERS]:
        await queue.stop()


# Tests that drive jobs by hand build the app without running workers.
START_WORKERS = web.AppKey("start_workers", bool)


def create_app(settings: Settings, *, start_workers: bool = True) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.MAX_REQUEST_BODY,
        middlewares=[
            access_middleware(metrics),
            cors_middleware(settings.ALLOWED_ORIGINS),
            error_middleware,
            auth.auth_middleware(settings),
        ],
    )
    app[appkeys.SETTINGS] = settings
    app[appkeys.KEYS] = Keys(settings.REDIS_KEY_PREFIX)
    app[appkeys.METRICS] = metrics
    app[START_WORKERS] = start_workers
    app.cleanup_ctx.extend([servers_ctx, database_ctx, redis_ctx, storage_ctx, preview_service_ctx,
                           streams_ctx, fanout_ctx, ai_ctx, queue_ctx])

    ops.setup_routes(app)
    auth.setup_routes(app)
    chats.setup_routes(app)
    messages.setup_routes(app)
    files.setup_routes(app)
    answers.setup_routes(app)
    callback.setup_routes(app)
    ws.setup_routes(app)
    webclient.setup_routes(app)  # the web client at / (public, like /docs)
    return app
