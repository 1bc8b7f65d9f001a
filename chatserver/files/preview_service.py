"""The preview service client (docs/preview-service.md).

One call sends one file. Any failure (connection, time-out, non-200, an
answer that is not the documented JSON or is too large) raises
PreviewServiceError; the job queue retries it with backoff, and the file
becomes `failed` with that reason once the attempts run out.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import aiofiles
import aiohttp
from aiohttp import hdrs, web

from chatserver import appkeys
from chatserver.config import Settings
from chatserver.files.result import Preview, make_preview

CHUNK_BYTES = 256 * 1024
IMAGE_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg"}


class PreviewServiceError(Exception):
    """The service did not give a usable answer this time."""


class PreviewService:
    def __init__(self, session: aiohttp.ClientSession, settings: Settings):
        self.session = session
        self.url = settings.PREVIEW_SERVICE_URL
        self.api_key = settings.PREVIEW_SERVICE_API_KEY
        self.timeout = settings.PREVIEW_SERVICE_TIMEOUT_SECONDS
        self.max_answer = settings.PREVIEW_SERVICE_MAX_ANSWER_BYTES
        self.budget = settings.TEXT_EXTRACT_CHAR_BUDGET

    async def preview(self, path: Path, name: str, content_type: str) -> Preview:
        try:
            # closing the chunks closes the file also when the request fails midway
            async with contextlib.aclosing(_read_chunks(path)) as chunks:
                raw = await self._post(chunks, name, content_type)
        except TimeoutError:
            raise PreviewServiceError(f"preview service did not answer within {self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise PreviewServiceError(f"preview service unreachable: {exc.__class__.__name__}: {exc}") from None
        return self._parse(raw)

    async def _post(self, chunks: AsyncIterator[bytes], name: str, content_type: str) -> bytes:
        with aiohttp.MultipartWriter("form-data") as body:
            part = body.append(chunks, {hdrs.CONTENT_TYPE: content_type})
            part.set_content_disposition("form-data", name="file", filename=name)
        headers = {hdrs.AUTHORIZATION: f"Bearer {self.api_key}"}
        async with self.session.post(self.url, data=body, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
            if resp.status != 200:
                raise PreviewServiceError(f"preview service answered HTTP {resp.status}")
            return await self._read_answer(resp)

    async def _read_answer(self, resp: aiohttp.ClientResponse) -> bytes:
        if (resp.content_length or 0) > self.max_answer:
            raise PreviewServiceError(f"preview service answer is larger than {self.max_answer} bytes")
        raw = bytearray()
        async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
            raw += chunk
            if len(raw) > self.max_answer:
                raise PreviewServiceError(f"preview service answer is larger than {self.max_answer} bytes")
        return bytes(raw)

    def _parse(self, raw: bytes) -> Preview:
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise PreviewServiceError("preview service answered invalid JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("content"), str):
            raise PreviewServiceError("preview service answer has no 'content' string")
        preview = answer.get("preview")
        if preview is not None and not isinstance(preview, str):
            raise PreviewServiceError("preview service answer has a 'preview' that is not a string")
        image, extension = _image(answer.get("preview_image"))
        return make_preview(answer["content"], self.budget, preview_text=preview,
                            image=image, image_extension=extension)


def _image(encoded: object) -> tuple[bytes | None, str | None]:
    if encoded in (None, ""):
        return None, None
    if not isinstance(encoded, str):
        raise PreviewServiceError("preview service answer has a 'preview_image' that is not a string")
    if encoded.startswith("data:"):
        encoded = encoded.partition(",")[2]
    try:
        image = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PreviewServiceError("preview service answer has a 'preview_image' that is not base64") from None
    for signature, extension in IMAGE_SIGNATURES.items():
        if image.startswith(signature):
            return image, extension
    raise PreviewServiceError("preview service answer has a 'preview_image' that is neither PNG nor JPEG")


async def _read_chunks(path: Path) -> AsyncGenerator[bytes, None]:
    async with aiofiles.open(path, "rb") as fh:
        while chunk := await fh.read(CHUNK_BYTES):
            yield chunk


async def preview_service_ctx(app: web.Application):
    """The service client when PREVIEW_SERVICE_URL is set, else None (the built-in extractor)."""
    settings = app[appkeys.SETTINGS]
    if not settings.PREVIEW_SERVICE_URL:
        app[appkeys.PREVIEW_SERVICE] = None
        yield
        return
    async with aiohttp.ClientSession() as session:
        app[appkeys.PREVIEW_SERVICE] = PreviewService(session, settings)
        yield
