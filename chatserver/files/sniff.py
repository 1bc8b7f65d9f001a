"""The content type of an upload, decided by its bytes.

Binary formats are recognised by their signatures. Bytes that decode as UTF-8
are text; only then may the name or the client's claim narrow it down (to
Markdown, CSV, JSON, HTML, source code, ...), and only to a textual type, so
a client cannot make us serve or parse bytes as something they are not.
"""

from __future__ import annotations

import mimetypes
import zipfile
from pathlib import Path

import filetype

SNIFF_BYTES = 8192
OCTET_STREAM = "application/octet-stream"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXTUAL_APPLICATION = {
    "application/json", "application/xml", "application/javascript", "application/x-javascript",
    "application/x-sh", "application/x-shellscript", "application/sql", "application/toml",
    "application/yaml", "application/x-yaml", "application/xhtml+xml", "application/x-tex",
}
# common source and data files the mimetypes table does not know
EXTRA_TEXT_TYPES = {
    ".md": "text/markdown", ".markdown": "text/markdown", ".rs": "text/x-rust", ".go": "text/x-go",
    ".ts": "text/x-typescript", ".tsx": "text/x-typescript", ".jsx": "text/javascript",
    ".kt": "text/x-kotlin", ".swift": "text/x-swift", ".rb": "text/x-ruby", ".php": "text/x-php",
    ".toml": "application/toml", ".yaml": "application/yaml", ".yml": "application/yaml",
    ".sql": "application/sql", ".ini": "text/plain", ".cfg": "text/plain", ".log": "text/plain",
}


def sniff(head: bytes, name: str, claimed: str | None) -> str:
    """The type of a file whose first SNIFF_BYTES (or fewer, if it is shorter) are `head`."""
    kind = filetype.guess_mime(head) if head else None
    if kind:
        return kind
    if not looks_like_text(head):
        return OCTET_STREAM
    if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].lower().startswith((b"<!doctype html", b"<html")):
        return "text/html"
    for guess in (_type_of_name(name), _bare(claimed)):
        if guess and (guess.startswith("text/") or guess in TEXTUAL_APPLICATION):
            return guess
    return "text/plain"


def refine_zip(path: Path, kind: str) -> str:
    """A zip whose signature check was inconclusive may still be a DOCX (blocking)."""
    if kind != "application/zip":
        return kind
    try:
        with zipfile.ZipFile(path) as archive:
            return DOCX if "word/document.xml" in archive.namelist() else kind
    except (zipfile.BadZipFile, OSError):
        return kind


def looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the end of the sniffed window is fine
        return exc.start >= len(head) - 3 and len(head) >= SNIFF_BYTES
    return True


def is_text(content_type: str) -> bool:
    return content_type.startswith("text/") or content_type in TEXTUAL_APPLICATION


def _type_of_name(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    return EXTRA_TEXT_TYPES.get(suffix) or mimetypes.guess_type(name, strict=False)[0]


def _bare(content_type: str | None) -> str | None:
    return content_type.split(";", 1)[0].strip().lower() if content_type else None
