"""Operations: health, readiness, metrics, and the API docs."""

from __future__ import annotations

import asyncio
import hmac
import importlib.util
from pathlib import Path

import prometheus_client
from aiohttp import web

from chatserver import appkeys
from chatserver.api.endpoint import json_response
from chatserver.api.openapi import build_openapi
from chatserver.api.rest_errors import error_body
from chatserver.errors import NotReady, Unauthorized, Unhealthy

# openapi-ui-bundles ships Swagger UI and ReDoc builds and nothing else (no
# dependencies); we only serve its vendor folders.
_SPEC = importlib.util.find_spec("openapi_ui_bundles")
assert _SPEC is not None and _SPEC.submodule_search_locations, "openapi-ui-bundles is a runtime dependency"
_BUNDLES = Path(_SPEC.submodule_search_locations[0])
SWAGGER_ASSETS = _BUNDLES / "swagger_ui" / "vendor"
REDOC_ASSETS = _BUNDLES / "redoc" / "vendor"
OPENAPI = web.AppKey("openapi", dict)

SWAGGER_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API docs</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="/docs/assets/swagger-ui/swagger-ui.css">
<style>body {{ margin: 0; }}</style></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-init.js"></script></body></html>
"""
SWAGGER_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout", persistAuthorization: true});
"""
REDOC_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API reference</title>
<link rel="icon" href="/favicon.ico">
<style>body {{ margin: 0; }}</style></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs/assets/redoc/redoc.standalone.js"></script></body></html>
"""
# The docs pages may load nothing from elsewhere: ReDoc's built-in Redocly
# logo (an image on a CDN) is refused by the browser before any request and
# ReDoc then leaves it out. ReDoc styles with injected <style> elements and
# runs its search in a blob: worker.
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


async def health(request: web.Request) -> web.Response:
    """The process answers, and keeps its embedded servers running (it cannot
    recover by itself from one it fails to start again: 503, naming it)."""
    version = request.app[appkeys.SETTINGS].APP_VERSION
    failing = [keeper for keeper in request.app.get(appkeys.KEEPERS, []) if not keeper.healthy]
    if failing:
        names = " and ".join(f"the embedded {keeper.name}" for keeper in failing)
        body = error_body(Unhealthy(f"{names} stopped and could not be started again"))
        return json_response({**body, "version": version}, Unhealthy.status)
    return json_response({"status": "ok", "version": version})


async def ready(request: web.Request) -> web.Response:
    app = request.app
    checks = {}

    async def check(name, probe):
        try:
            await asyncio.wait_for(probe(), 2)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable: {exc.__class__.__name__}"

    await asyncio.gather(
        check("postgres", lambda: app[appkeys.DB].fetchval("SELECT 1")),
        check("redis", app[appkeys.REDIS].ping),
    )
    failed = [name for name, state in checks.items() if state != "ok"]
    if failed:
        body = error_body(NotReady(f"{' and '.join(failed)} not reachable"))
        return json_response({**body, "checks": checks}, NotReady.status)
    return json_response({"status": "ready", "checks": checks})


def _metrics_allowed(request: web.Request) -> bool:
    expected = request.app[appkeys.SETTINGS].METRICS_TOKEN
    if not expected:
        return True
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    if not _metrics_allowed(request):
        raise Unauthorized("/metrics needs 'Authorization: Bearer <METRICS_TOKEN>'",
                           headers={"WWW-Authenticate": "Bearer"})
    m = app[appkeys.METRICS]
    queue = app[appkeys.QUEUE]
    try:
        for name, depth in (await queue.depths()).items():
            m.queue_depth.labels(name).set(depth)
    except Exception:
        pass  # Redis down: /ready reports it; the rest of the metrics stay useful
    for name, stats in queue.stats.items():
        for outcome in ("processed", "failed", "retried", "dead"):
            m.jobs.labels(name, outcome).set(getattr(stats, outcome))
    return web.Response(body=prometheus_client.generate_latest(m.registry),
                        headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


async def build_openapi_document(app: web.Application) -> None:
    """On start-up, once every route is registered."""
    settings = app[appkeys.SETTINGS]
    app[OPENAPI] = build_openapi(app, settings.APP_NAME, settings.APP_VERSION)


def _page(request: web.Request, template: str) -> web.Response:
    title = request.app[appkeys.SETTINGS].APP_NAME
    return web.Response(text=template.format(title=title), content_type="text/html",
                        headers={"Content-Security-Policy": DOCS_CSP})


async def swagger_page(request: web.Request) -> web.Response:
    return _page(request, SWAGGER_HTML)


async def redoc_page(request: web.Request) -> web.Response:
    return _page(request, REDOC_HTML)


async def swagger_init(request: web.Request) -> web.Response:
    return web.Response(text=SWAGGER_INIT, content_type="application/javascript")
