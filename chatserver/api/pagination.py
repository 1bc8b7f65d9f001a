"""Opaque cursors: a JSON list, base64url-encoded; 422 when tampered with."""

from __future__ import annotations

import base64
import json
from typing import Annotated

import pydantic

from chatserver.errors import InvalidCursor


def encode_cursor(*values: object) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        values = None
    if not (isinstance(values, list) and len(values) == size and all(isinstance(v, str) for v in values)):
        raise InvalidCursor()
    return values


# the alphabet of unpadded base64url, which is all encode_cursor writes
Cursor = Annotated[str, pydantic.StringConstraints(min_length=1, max_length=500, pattern=r"^[A-Za-z0-9_-]+$")]


class PageQuery(pydantic.BaseModel):
    """The `?limit=&cursor=` query of a paginated list."""

    model_config = pydantic.ConfigDict(extra="ignore")
    limit: Annotated[int, pydantic.Field(ge=1, le=100)]
    # any string of the alphabet fits the schema, but only one the server gave out is a cursor
    cursor: Cursor | None = pydantic.Field(
        default=None, description="the `next_cursor` of the previous page, as given; any other value "
                                  "(`0`, an edited cursor) is 422 `invalid_cursor`")


def page_query(default: int) -> type[PageQuery]:
    """A PageQuery whose limit defaults to `default`."""

    class DefaultedPageQuery(PageQuery):
        limit: Annotated[int, pydantic.Field(ge=1, le=100)] = default

    DefaultedPageQuery.__name__ = f"PageQuery{default}"
    return DefaultedPageQuery
