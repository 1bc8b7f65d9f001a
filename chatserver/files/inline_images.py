"""Images that arrive inside a request as data URLs (the /v1 API's
`image_url` parts) kept as files of the user, like uploads: stored, then
previewed by the preview job. Remote URLs are never fetched: the server
would become a way to reach what only it can reach."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid

import aiofiles
from aiohttp import web

from chatserver import appkeys
from chatserver.data import files
from chatserver.files.preview import queue_preview
from chatserver.files.sniff import sniff
from chatserver.files.storage import discard

DATA_URL = re.compile(r"^data:(image/[\w.+-]+);base64,(.*)$", re.DOTALL)
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


class BadImage(ValueError):
    """Not a data URL of an image within the upload size; the message says why."""


def decode(url: str, max_size: int) -> bytes:
    match = DATA_URL.match(url)
    if match is None:
        raise BadImage("image_url: only data URLs of images are accepted (data:image/...;base64,...); "
                       "remote URLs are not fetched")
    if len(match.group(2)) * 3 // 4 > max_size:
        raise BadImage(f"image_url: the image is larger than {max_size} bytes")
    try:
        data = base64.b64decode(match.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise BadImage("image_url: the data URL is not valid base64") from None
    if not sniff(data[:4096], "", None).startswith("image/"):
        raise BadImage("image_url: the data is not an image")
    return data


async def keep_image(app: web.Application, user_id: uuid.UUID, chat_id: uuid.UUID, data: bytes,
                     number: int) -> uuid.UUID:
    """Store decoded image bytes as the user's file in the chat and queue its preview; its id."""
    storage = app[appkeys.STORAGE]
    content_type = sniff(data[:4096], "", None)
    temp = storage.new_temp()
    try:
        async with aiofiles.open(temp, "wb") as out:
            await out.write(data)
        storage_name = await storage.keep(temp)
    finally:
        await discard(temp)
    name = f"image-{number}.{EXTENSIONS.get(content_type, 'img')}"
    row = await files.insert(app[appkeys.DB], user_id, chat_id, name, storage_name, len(data),
                             hashlib.sha256(data).hexdigest(), content_type)
    await queue_preview(app, row["id"])
    return row["id"]
