"""The app under test, served on a real port of 127.0.0.1 (see the
`start_live` fixture)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web


@dataclasses.dataclass
class Live:
    url: str
    app: web.Application
    settings: Any
