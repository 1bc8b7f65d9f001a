"""Receiving an upload: a multipart body streamed to a temporary file.

The body is read part by part with `request.multipart()`, so neither the
app's JSON body limit nor memory bounds its size; MAX_UPLOAD_SIZE does, and
it is checked on every chunk as it arrives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles
from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from chatserver.errors import (
    InvalidMultipart,
    PayloadTooLarge,
    TooManyFiles,
    UnsupportedMediaType,
    UploadInterrupted,
    ValidationFailed,
)
from chatserver.files.filenames import clean_name
from chatserver.files.sniff import SNIFF_BYTES
from chatserver.files.storage import Storage, discard

CHUNK_BYTES = 256 * 1024
MAX_FIELD_BYTES = 1024


@dataclasses.dataclass
class Upload:
    temp: Path
    name: str
    claimed_type: str | None
    size: int
    sha256: str
    head: bytes
    fields: dict[str, str]


@contextlib.asynccontextmanager
async def receive_upload(request: web.Request, storage: Storage, max_size: int) -> AsyncIterator[Upload]:
    """The received upload; its temporary file is gone when the block ends,
    however it ends (refused, failed, client gone), unless it was moved away."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType("send the file as multipart/form-data")
    temp = storage.new_temp()
    try:
        yield await _receive(request, temp, max_size)
    finally:
        await discard(temp)


async def _receive(request: web.Request, temp: Path, max_size: int) -> Upload:
    fields: dict[str, str] = {}
    upload = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise InvalidMultipart("nested multipart bodies are not accepted")
            if part.name == "file":
                if upload is not None:
                    raise TooManyFiles()
                upload = await _save(part, temp, max_size)
            else:
                fields[part.name or ""] = await _small_field(part)
    except (ConnectionResetError, ConnectionAbortedError):
        # the client went away mid-body: nobody reads this answer
        raise UploadInterrupted() from None
    except (ValueError, BadHttpMessage) as exc:
        # also part headers aiohttp refuses: NUL or control bytes, lines over 8 KiB; aiohttp's
        # message quotes the offending bytes, which an answer never echoes
        what = "a line of it is too long" if isinstance(exc, LineTooLong) else "it cannot be parsed"
        raise InvalidMultipart(f"malformed multipart body: {what}") from None
    if upload is None:
        raise ValidationFailed("file: a multipart part named 'file' is required")
    upload.fields = fields
    return upload


async def _save(part: BodyPartReader, temp: Path, max_size: int) -> Upload:
    digest, size, head = hashlib.sha256(), 0, bytearray()
    async with aiofiles.open(temp, "wb") as out:
        while chunk := await part.read_chunk(CHUNK_BYTES):
            size += len(chunk)
            if size > max_size:
                raise PayloadTooLarge(f"the file is larger than the limit of {max_size} bytes")
            digest.update(chunk)
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            await out.write(chunk)
    return Upload(temp=temp, name=clean_name(part.filename), claimed_type=part.headers.get(hdrs.CONTENT_TYPE),
                  size=size, sha256=digest.hexdigest(), head=bytes(head), fields={})


async def _small_field(part: BodyPartReader) -> str:
    value = bytearray()
    while chunk := await part.read_chunk(MAX_FIELD_BYTES):
        value += chunk
        if len(value) > MAX_FIELD_BYTES:
            raise ValidationFailed(f"{part.name}: longer than {MAX_FIELD_BYTES} bytes")
    return value.decode("utf-8", "replace").strip()
