"""Client file names: cleaned on the way in, encoded safely on the way out.

A client's name is only ever metadata; it never becomes a path.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

MAX_NAME_CHARS = 255
DEFAULT_NAME = "upload"


def clean_name(raw: str | None) -> str:
    """The last path segment without control or formatting characters
    (NUL, newlines, bidi overrides that disguise an extension), at most 255 chars."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    name = name.strip().strip(".").strip()
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        keep_ext = dot and 0 < len(ext) <= 16
        name = (stem[: MAX_NAME_CHARS - len(ext) - 1] + "." + ext) if keep_ext else name[:MAX_NAME_CHARS]
    return name or DEFAULT_NAME


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback and the exact name as RFC 5987 `filename*`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = "".join(ch if ch.isprintable() and ch not in '"\\;' else "_" for ch in ascii_name).strip()
    return f"attachment; filename=\"{ascii_name or 'download'}\"; filename*=UTF-8''{quote(name, safe='')}"
