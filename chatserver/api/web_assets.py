"""Where the web client's files are and the version their addresses carry:
a hash of every asset's bytes, so that assets can be cached forever and a
new release is picked up at once (webclient.py serves them; the shared
page links its stylesheet)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static" / "web"
PREFIX = "/web"


@functools.cache
def asset_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
