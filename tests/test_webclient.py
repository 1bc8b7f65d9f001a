"""The web client's HTTP side: the page, its headers, its assets."""

import re

from chatserver.api.web_assets import STATIC


async def test_page_is_public_with_a_strict_csp(client):
    resp = await client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["connect-src"].startswith("'self'") and "ws://" in directives["connect-src"]
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    html = await resp.text()
    # no inline script and nothing from another host
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "http://" not in html and "https://" not in html


async def test_assets_are_versioned_and_cached(client):
    html = await (await client.get("/")).text()
    script = re.search(r'<script type="module" src="([^"]+)"', html).group(1)
    resp = await client.get(script)
    assert resp.status == 200
    assert resp.content_type == "text/javascript"
    assert "immutable" in resp.headers["Cache-Control"]
    css = re.search(r'<link rel="stylesheet" href="([^"]+)"', html).group(1)
    resp = await client.get(css)
    assert resp.status == 200 and resp.content_type == "text/css"
    # an asset asked for under an old version is served, but not kept
    stale = re.sub(r"/web/[^/]+/", "/web/0ld0ld/", script)
    resp = await client.get(stale)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"


async def test_assets_outside_the_client_are_not_served(client):
    for path in ("/web/x/../../webclient.py", "/web/x/%2e%2e/%2e%2e/config.py", "/web/x/index.html",
                 "/web/x/js/missing.js"):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert (await resp.json())["code"] == "not_found"


def test_no_third_party_or_inline_code_in_the_client():
    for path in STATIC.rglob("*"):
        if path.suffix in (".js", ".html", ".css"):
            text = path.read_text("utf-8")
            assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, path
            assert "//cdn" not in text and "https://" not in text.replace("https://example", ""), path


async def test_favicon_ico_is_served(client):
    resp = await client.get("/favicon.ico")
    assert resp.status == 200 and resp.content_type == "image/x-icon"
    assert (await resp.read())[:4] == b"\x00\x00\x01\x00"


def test_the_client_modules_import_no_circle():
    imports = re.compile(r'^import [^;]*? from "\./([\w.]+)";', re.M)
    graph = {p.name: set(imports.findall(p.read_text("utf-8"))) for p in (STATIC / "js").glob("*.js")}
    assert graph["messages.js"], "the pattern finds no imports"

    def circle_from(module: str, path: list[str]) -> list[str] | None:
        for imported in sorted(graph[module]):
            if imported in path:
                return path[path.index(imported):] + [imported]
            found = circle_from(imported, path + [imported])
            if found:
                return found
        return None

    assert [c for m in sorted(graph) if (c := circle_from(m, [m]))] == []
