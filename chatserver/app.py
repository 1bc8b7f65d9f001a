"""create_app(settings): the only way the application is built.

Read top to bottom: resources (in start-up order), the one middleware
(api/middleware.py), then the route table: every route of the server, in one place.
Every job of the server is in job_table.py.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiopg
import redis.asyncio as redis_async
from aiohttp import web

from chatserver import appkeys, outage
from chatserver.ai.registry import ai_ctx, chosen
from chatserver.api import (
    admin_routes,
    api_key_routes,
    auth,
    callback_routes,
    chat_list_routes,
    chat_routes,
    feedback_routes,
    file_routes,
    folder_routes,
    knowledge_routes,
    message_routes,
    model_routes,
    oidc_routes,
    ops,
    portable_routes,
    preset_routes,
    responses_routes,
    share_routes,
    sse,
    tool_routes,
    v1,
    webclient,
    ws,
)
from chatserver.api.middleware import request_middleware
from chatserver.api.oidc_client import OIDC, OidcClient
from chatserver.api.ratelimit import RATE_LIMITS, rate_limits_ctx
from chatserver.api.ws_sockets import close_sockets, open_sockets_ctx
from chatserver.config import Settings
from chatserver.db import create_database_if_missing, open_database, settings_dsn
from chatserver.embedded import embedded_postgres, embedded_redis
from chatserver.files.preview_service import preview_service_ctx
from chatserver.files.storage import storage_ctx
from chatserver.job_table import job_table
from chatserver.jobs.queue import JobQueue
from chatserver.jobs.worker import Worker
from chatserver.knowledge.vectors import vectors_ctx
from chatserver.live.lifetime import live_ctx
from chatserver.metrics import Metrics
from chatserver.migrate import apply_migrations_async
from chatserver.outage import OUTAGES, POSTGRES, REDIS, Outages
from chatserver.redis_keys import Keys
from chatserver.secret import with_jwt_secret
from chatserver.startup import log_summary
from chatserver.tools.tool_sources import toolbox_ctx

# commands in flight at once per process, and how long one waits for a connection before
# Redis counts as unreachable (its socket timeouts are no longer either)
REDIS_POOL_MAX = 500
REDIS_POOL_WAIT_SECONDS = 5.0

async def servers_ctx(app: web.Application):
    """Use the configured servers, or start embedded ones under DATA_DIR."""
    settings = app[appkeys.SETTINGS]
    keepers = app[appkeys.KEEPERS] = []
    with contextlib.ExitStack() as stack:
        if settings.embedded_postgres:
            app[appkeys.DSN] = stack.enter_context(embedded_postgres(settings.DATA_DIR, settings.DB_NAME,
                                                                     keepers=keepers))
        else:
            app[appkeys.DSN] = settings_dsn(settings)
        if settings.embedded_redis:
            app[appkeys.REDIS_URL] = stack.enter_context(embedded_redis(settings.DATA_DIR, keepers=keepers))
        else:
            app[appkeys.REDIS_URL] = settings.external_redis_url
        yield


async def database_ctx(app: web.Application):
    await asyncio.to_thread(create_database_if_missing, app[appkeys.DSN])
    await apply_migrations_async(app[appkeys.DSN])
    db = await open_database(app[appkeys.DSN], app[appkeys.SETTINGS])
    app[appkeys.DB] = db
    # before every later resource, so all of them see the secret in use
    app[appkeys.SETTINGS] = await with_jwt_secret(db, app[appkeys.SETTINGS])
    yield
    db.pool.close()
    await db.pool.wait_closed()


async def redis_ctx(app: web.Application):
    # a command waits for a free connection rather than failing at once: redis-py's own pool
    # refuses the 101st concurrent command, which a burst of handshakes reaches
    pool = redis_async.BlockingConnectionPool.from_url(
        app[appkeys.REDIS_URL], decode_responses=True, health_check_interval=30,
        max_connections=REDIS_POOL_MAX, timeout=REDIS_POOL_WAIT_SECONDS)
    client = redis_async.Redis.from_pool(pool)
    app[appkeys.REDIS] = client
    yield
    await client.aclose()


async def outages_ctx(app: web.Application):
    dsn, db, redis = app[appkeys.DSN], app[appkeys.DB], app[appkeys.REDIS]
    timeout = app[appkeys.SETTINGS].DB_TIMEOUT_SECONDS

    async def postgres_answers() -> None:
        # a connection of its own: the pool may hold ones the outage broke
        async with aiopg.connect(dsn, timeout=timeout) as conn, conn.cursor() as cur:
            await cur.execute("SELECT 1")

    async def drop_broken_connections() -> None:
        await db.pool.clear()

    async def drop_broken_redis_connections() -> None:
        # idle connections from before the outage would each fail once more and start a new one
        await redis.connection_pool.disconnect(inuse_connections=False)
        limits = app.get(RATE_LIMITS)
        if limits is not None:
            await limits.pool.disconnect(inuse_connections=False)

    outages = Outages({POSTGRES: postgres_answers, REDIS: redis.ping},
                      {POSTGRES: drop_broken_connections, REDIS: drop_broken_redis_connections})
    app[OUTAGES] = outages
    yield
    await outages.close()


async def jobs_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    table = job_table(settings)
    queue = JobQueue(app[appkeys.REDIS], app[appkeys.KEYS], table.routes, lease_seconds=settings.JOB_LEASE_SECONDS)
    worker = Worker(
        queue,
        table,
        app,
        max_attempts=settings.JOB_MAX_ATTEMPTS,
        retry_base=settings.JOB_RETRY_BASE_SECONDS,
        grace_seconds=settings.SHUTDOWN_GRACE_SECONDS,
        poll_seconds=settings.QUEUE_POLL_SECONDS,
        job_timeout=settings.JOB_TIMEOUT_SECONDS,
        sweep_seconds=settings.SWEEP_INTERVAL_SECONDS,
        outage=lambda exc: outage.report(app, exc),
    )
    app[appkeys.QUEUE], app[appkeys.WORKER] = queue, worker
    if app[START_WORKERS]:
        await worker.start()
    yield
    # also workers a test started by hand: left running, they outlive the pool and Redis client
    if worker.started:
        await worker.stop()


async def stop_taking_jobs(app: web.Application) -> None:
    """At the signal, before open requests are waited for: the worker says
    at once what it still waits for, and the grace period starts."""
    app[appkeys.WORKER].stopping()


# Tests that drive jobs by hand build the app without running workers.
START_WORKERS = web.AppKey("start_workers", bool)


def create_app(settings: Settings, *, start_workers: bool = True) -> web.Application:
    chosen(settings)  # a backend that cannot run stops the server before anything starts
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.MAX_REQUEST_BODY,
        middlewares=[request_middleware(metrics, settings.ALLOWED_ORIGINS)],
    )
    app[appkeys.SETTINGS] = settings
    app[appkeys.KEYS] = Keys(settings.REDIS_KEY_PREFIX)
    app[appkeys.METRICS] = metrics
    app[START_WORKERS] = start_workers
    app[portable_routes.EXPORTS] = portable_routes.ExportSlots(settings.EXPORT_CONCURRENCY)
    if settings.OIDC_ISSUER:
        app[OIDC] = OidcClient(settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET)
    app.cleanup_ctx.extend([servers_ctx, database_ctx, redis_ctx, outages_ctx, rate_limits_ctx, storage_ctx,
                           preview_service_ctx, live_ctx, open_sockets_ctx, toolbox_ctx, ai_ctx,
                           vectors_ctx, jobs_ctx])

    app.on_startup.extend([ops.build_openapi_document, log_summary])
    app.on_shutdown.extend([stop_taking_jobs, close_sockets])
    add_routes(app.router)
    return app


FILE = "/api/files/{file_id:(?!search$)[^{}/]+}"


def add_routes(router: web.UrlDispatcher) -> None:
    """The route table: every route of the server, in the order of the API."""
    router.add_post("/api/auth/register", auth.register)
    router.add_post("/api/auth/login", auth.login)
    router.add_post("/api/auth/logout", auth.logout)
    router.add_get("/api/auth/oidc/login", oidc_routes.oidc_login)
    router.add_get("/api/auth/oidc/callback", oidc_routes.oidc_callback)
    router.add_get("/api/users/me", auth.me)
    router.add_get("/api/users/me/usage", model_routes.my_usage)

    router.add_get("/api/admin/users", admin_routes.list_accounts)
    router.add_patch("/api/admin/users/{user_id}", admin_routes.update_user)
    router.add_get("/api/admin/keys", admin_routes.list_everyones_keys)
    router.add_delete("/api/admin/keys/{key_id}", admin_routes.revoke_anyones_key)
    router.add_get("/api/admin/usage", admin_routes.admin_usage)

    router.add_post("/api/keys", api_key_routes.create_key)
    router.add_get("/api/keys", api_key_routes.list_keys)
    router.add_delete("/api/keys/{key_id}", api_key_routes.delete_key)

    router.add_post("/api/chats", chat_routes.create_chat)
    router.add_get("/api/chats", chat_list_routes.list_chats)
    router.add_get("/api/chats/{chat_id}", chat_routes.get_chat)
    router.add_patch("/api/chats/{chat_id}", chat_routes.rename_chat)
    router.add_delete("/api/chats/{chat_id}", chat_routes.delete_chat)
    router.add_get("/api/search", chat_routes.search)
    router.add_post("/api/folders", folder_routes.create_folder)
    router.add_get("/api/folders", folder_routes.list_folders)
    router.add_patch("/api/folders/{folder_id}", folder_routes.rename_folder)
    router.add_delete("/api/folders/{folder_id}", folder_routes.delete_folder)
    router.add_post("/api/presets", preset_routes.create_preset)
    router.add_get("/api/presets", preset_routes.list_presets)
    router.add_patch("/api/presets/{preset_id}", preset_routes.update_preset)
    router.add_delete("/api/presets/{preset_id}", preset_routes.delete_preset)
    router.add_get("/api/models", model_routes.list_models)
    router.add_get("/api/tools", tool_routes.list_tools)

    router.add_post("/api/chats/{chat_id}/messages", message_routes.post_message)
    router.add_get("/api/chats/{chat_id}/messages", message_routes.list_messages)
    router.add_get("/api/messages/{message_id}", message_routes.get_message)
    router.add_post("/api/messages/{message_id}/cancel", message_routes.cancel_message)
    router.add_post("/api/messages/{message_id}/regenerate", message_routes.regenerate_message)
    router.add_post("/api/messages/{message_id}/edit", message_routes.edit_message)
    router.add_post("/api/chats/{chat_id}/branch", message_routes.switch_branch)
    router.add_get("/api/messages/{message_id}/stream", sse.stream_message)
    router.add_post("/api/messages/{message_id}/feedback", feedback_routes.give_feedback)
    router.add_delete("/api/messages/{message_id}/feedback", feedback_routes.remove_feedback)

    router.add_get("/api/chats/{chat_id}/export", portable_routes.export_chat)
    router.add_get("/api/export", portable_routes.export_all)
    router.add_post("/api/import", portable_routes.import_file)
    router.add_get("/api/imports/{import_id}", portable_routes.get_import)

    router.add_post("/api/chats/{chat_id}/shares", share_routes.create_share)
    router.add_get("/api/shares", share_routes.list_shares)
    router.add_delete("/api/shares/{share_id}", share_routes.delete_share)
    router.add_get("/api/shared/{token}", share_routes.get_shared)

    router.add_get("/ws/chat/{chat_id}", ws.chat_socket)
    router.add_get("/ws/chats", ws.chat_list_socket)
    router.add_post("/api/ai/callback/{message_id}", callback_routes.ai_callback)

    router.add_post("/api/files", file_routes.upload_file)
    router.add_get("/api/files", file_routes.list_files)
    router.add_get("/api/files/search", knowledge_routes.search_passages)
    # a file id is never "search": the search's path then allows GET alone (its Allow header says so)
    router.add_get(FILE, file_routes.get_file)
    router.add_get("/api/files/{file_id}/content", file_routes.get_content)
    router.add_get("/api/files/{file_id}/preview", file_routes.get_preview)
    router.add_delete(FILE, file_routes.delete_file)

    router.add_get("/v1/models", v1.openai_models)
    router.add_post("/v1/chat/completions", v1.chat_completions)
    router.add_post("/v1/responses", responses_routes.create_response)
    router.add_get("/v1/responses/{response_id}", responses_routes.get_response)
    router.add_delete("/v1/responses/{response_id}", responses_routes.delete_response)
    router.add_post("/v1/responses/{response_id}/cancel", responses_routes.cancel_response)
    router.add_get("/v1/responses/{response_id}/input_items", responses_routes.response_input_items)

    router.add_get("/health", ops.health)
    router.add_get("/ready", ops.ready)
    router.add_get("/metrics", ops.metrics)
    router.add_get("/openapi.json", ops.openapi_json)
    router.add_get("/docs", ops.swagger_page)
    router.add_get("/docs/swagger-init.js", ops.swagger_init)
    router.add_get("/redoc", ops.redoc_page)
    router.add_static("/docs/assets/swagger-ui", ops.SWAGGER_ASSETS)
    router.add_static("/docs/assets/redoc", ops.REDOC_ASSETS)

    # the web client (public, like /docs)
    router.add_get("/", webclient.index)
    router.add_get("/favicon.ico", webclient.favicon)
    router.add_get("/s/{token}", share_routes.shared_html)
    router.add_get(webclient.PREFIX + "/{version:[A-Za-z0-9]+}/{path:.+}", webclient.asset)
