"""Files through the REST API as the file and preview tests need them:
uploads (also byte for byte), the file once processed, what lies on disk."""

from __future__ import annotations

import uuid

import aiohttp

from chatserver import appkeys
from support.served_app import app_of


async def upload(client, account, data: bytes, name: str = "notes.txt", *, content_type: str | None = None,
                 chat_id: str | None = None):
    # names as browsers and curl send them: raw UTF-8, not percent-encoded
    form = aiohttp.FormData(quote_fields=False)
    if chat_id is not None:
        form.add_field("chat_id", chat_id)
    form.add_field("file", data, filename=name, content_type=content_type or "application/octet-stream")
    return await client.post("/api/files", data=form, headers=account.headers)


async def uploaded(client, account, data: bytes, name: str = "notes.txt", **options) -> dict:
    resp = await upload(client, account, data, name, **options)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def raw_multipart(parts: list[tuple[bytes, bytes]], boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart body from (part headers, content) pairs written byte for byte,
    for names no well-behaved client library would send."""
    body = b""
    for headers, content in parts:
        body += f"--{boundary}\r\n".encode() + headers + b"\r\n\r\n" + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def processed(client, account, file: dict) -> dict:
    """The file once its preview job (and its embedding, when a model is on) has run;
    a long file's embedding on a loaded machine may take minutes."""
    await app_of(client)[appkeys.QUEUE].wait_idle(timeout=300)
    resp = await client.get(f"/api/files/{file['id']}", headers=account.headers)
    assert resp.status == 200
    return await resp.json()


def stored_files(client) -> dict[str, list[str]]:
    """What lies in each folder of UPLOAD_DIR."""
    storage = app_of(client)[appkeys.STORAGE]
    return {folder.name: sorted(p.name for p in folder.iterdir())
            for folder in (storage.tmp, storage.files, storage.previews)}


def nothing_stored(client) -> bool:
    return stored_files(client) == {"tmp": [], "files": [], "previews": []}


def random_id() -> str:
    return str(uuid.uuid4())
