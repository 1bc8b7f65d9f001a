"""The one documented error body (docs/README.md, "Errors")."""

from __future__ import annotations


def assert_error(body: dict, code: str | None = None) -> None:
    """The one documented error shape."""
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("code"), str) and body["code"]
    if code:
        assert body["code"] == code, body
