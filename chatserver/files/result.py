"""What making a preview produces, shared by the service client and the extractor."""

from __future__ import annotations

import dataclasses
import re

PREVIEW_CHARS = 300


class UnreadableFile(Exception):
    """The file cannot be read (unknown type, corrupt): retrying will not help.
    The message is shown to the user as the file's error."""


@dataclasses.dataclass
class Preview:
    text: str
    preview_text: str
    image: bytes | None = None
    image_extension: str | None = None  # "png" or "jpeg"


def make_preview(text: str, budget: int, *, cut: bool = False, preview_text: str | None = None,
                 image: bytes | None = None, image_extension: str | None = None) -> Preview:
    """A Preview whose text fits the budget (saying so when it was cut) and
    can be stored in PostgreSQL, which refuses NUL characters."""
    text = storable(text)
    if cut or len(text) > budget:
        text = text[:budget] + f"\n\n[cut: only the first {budget} characters of the text are kept]"
    if preview_text is None:
        preview_text = snippet(text)
    return Preview(text, storable(preview_text)[: budget], image, image_extension)


def snippet(text: str) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1].rstrip() + "…"


def storable(text: str) -> str:
    # lone surrogates (possible in JSON) cannot be encoded for PostgreSQL either
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
