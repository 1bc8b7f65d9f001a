"""docs/ keeps up with the server: every path the server serves, every
setting it reads, every error code it answers with, and every link between
the pages is found in the docs.

The lists come from the running app (its /openapi.json and route table),
from `chatserver.config` and from the error catalogue (`chatserver.errors`;
tests/test_layout.py keeps codes from being written anywhere else), never
from a list kept here, so a new endpoint, setting or code fails this test
until the docs name it.
"""

from __future__ import annotations

import re
from pathlib import Path

from support.paths import TESTS_DIR

from chatserver.config import FIELDS
from chatserver.errors import catalogue

ROOT = TESTS_DIR.parent
DOCS = ROOT / "docs"
# path parameters are compared by position, not by name: {chat_id} == {id}
PARAMETER = re.compile(r"\{[^{}/\s]*\}")
API_PREFIXES = ("/api/", "/ws/", "/v1/")


def _pages() -> dict[Path, str]:
    return {page: page.read_text(encoding="utf-8") for page in sorted(DOCS.glob("*.md"))}


def _undocumented(endpoints: set[tuple[str, str]]) -> list[str]:
    """`METHOD /path` of each endpoint no page names, as in "`GET /api/chats`"."""
    text = PARAMETER.sub("{}", "\n".join(_pages().values()))
    missing = []
    for method, path in sorted(endpoints):
        # the path must end there: "GET /api/chats" is not named by "GET /api/chats/{}"
        pattern = re.escape(f"{method} {PARAMETER.sub('{}', path)}") + r"(?![\w/{-]|\.\w)"
        if not re.search(pattern, text):
            missing.append(f"{method} {path}")
    return missing


async def test_every_path_in_openapi_json_is_documented(make_client):
    client = await make_client(start_workers=False)
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    endpoints = {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}
    assert endpoints, "the OpenAPI document lists no paths"
    missing = _undocumented(endpoints)
    assert not missing, f"served but not named in docs/*.md: {missing}"


async def test_every_api_route_is_documented_also_without_openapi(make_client):
    """Handlers that /openapi.json leaves out (e.g. OpenAI-shaped /v1 ones) count too."""
    client = await make_client(start_workers=False)
    endpoints = {
        (route.method, route.resource.canonical)
        for route in client.server.app.router.routes()
        if route.method not in ("HEAD", "OPTIONS", "*") and route.resource.canonical.startswith(API_PREFIXES)
    }
    missing = _undocumented(endpoints)
    assert not missing, f"routed but not named in docs/*.md: {missing}"


def test_every_setting_is_documented():
    text = (DOCS / "settings.md").read_text(encoding="utf-8")
    missing = [name for name in FIELDS if f"`{name}`" not in text]
    assert not missing, f"settings missing from docs/settings.md: {missing}"


def _documented_codes() -> set[str]:
    """The first column of the code tables in docs/errors.md."""
    return set(re.findall(r"^\| `([a-z_]+)` \|", (DOCS / "errors.md").read_text(encoding="utf-8"), re.MULTILINE))


def test_every_error_code_is_documented():
    missing = sorted({kind.code for kind in catalogue()} - _documented_codes())
    assert not missing, f"error codes missing from docs/errors.md: {missing}"


def test_every_documented_error_code_exists():
    gone = sorted(_documented_codes() - {kind.code for kind in catalogue()})
    assert not gone, f"docs/errors.md lists codes the server no longer has: {gone}"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def test_links_between_pages_resolve():
    sources = {**_pages(), ROOT / "README.md": (ROOT / "README.md").read_text(encoding="utf-8")}
    broken = []
    for page, text in sources.items():
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            linked = (page.parent / target).resolve() if target else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.MULTILINE)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.name}: {target}#{anchor}")
    assert not broken, f"broken links: {broken}"
