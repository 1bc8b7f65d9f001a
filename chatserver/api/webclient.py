"""The web client at `/`: static HTML, CSS and ES modules, no build step.

The page is served with a Content-Security-Policy that allows only this
server's own scripts and styles. Assets live under `/web/<version>/...`,
where the version is a hash of every asset's bytes: they can then be cached
forever (`immutable`), and relative module imports keep the same version.
The page itself is `no-cache`, so a new release is picked up at once.

Everything here is public (the credential check only guards /api/ and /ws/);
the client talks to the server through the public contract alone.
"""

from __future__ import annotations

import mimetypes
import re
from html import escape as html_escape

from aiohttp import web

from chatserver import appkeys
from chatserver.api.web_assets import PREFIX, STATIC, asset_version

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
          ".html": "text/html", ".png": "image/png", ".ico": "image/x-icon"}


def content_security_policy(host: str | None) -> str:
    connect = ["'self'"]
    if host and _HOST.match(host):
        # CSP3 lets 'self' cover ws(s) of the same host; older browsers need them named
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join([
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src " + " ".join(connect),
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


def _security_headers(response: web.StreamResponse) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"


async def index(request: web.Request) -> web.Response:
    version = asset_version()
    settings = request.app[appkeys.SETTINGS]
    # the "Sign in with ..." button's provider, when single sign-on is set up
    sign_in_with = html_escape(settings.OIDC_PROVIDER_NAME, quote=True) if settings.OIDC_ISSUER else ""
    html = ((STATIC / "index.html").read_text("utf-8").replace("{{ASSETS}}", f"{PREFIX}/{version}")
            .replace("{{SIGN_IN_WITH}}", sign_in_with))
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = content_security_policy(request.host)
    response.headers["X-Frame-Options"] = "DENY"
    _security_headers(response)
    return response


async def favicon(request: web.Request) -> web.StreamResponse:
    """Browsers ask for /favicon.ico on every site, whatever the page names."""
    response = web.FileResponse(STATIC / "favicon.ico")
    response.content_type = "image/x-icon"
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["path"]
    path = (STATIC / name).resolve()
    if STATIC not in path.parents or not path.is_file() or path.name == "index.html":
        raise web.HTTPNotFound()
    response = web.FileResponse(path)
    kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response.content_type = kind
    if request.match_info["version"] == asset_version():
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:  # an old page asking for assets that have changed since: serve, but do not keep
        response.headers["Cache-Control"] = "no-cache"
    _security_headers(response)
    return response
