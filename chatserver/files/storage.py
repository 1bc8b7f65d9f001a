"""Uploaded bytes on disk: where they live and how they come and go.

UPLOAD_DIR holds four folders: `tmp/` for uploads still arriving, `files/`
for stored files (named by a generated storage name, never the client's),
`previews/` for thumbnails and `imports/` for files waiting for their import
job (named by the import's id). A file reaches `files/` by one rename, so a
reader never sees half of it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import aiofiles.os
from aiohttp import web

from chatserver import appkeys
from chatserver.data import files


class Storage:
    def __init__(self, root: str | Path):
        root = Path(root).resolve()
        self.tmp = root / "tmp"
        self.files = root / "files"
        self.previews = root / "previews"
        self.imports = root / "imports"

    async def create_dirs(self) -> None:
        for folder in (self.tmp, self.files, self.previews, self.imports):
            await aiofiles.os.makedirs(folder, exist_ok=True)

    def new_temp(self) -> Path:
        return self.tmp / f"{uuid.uuid4().hex}.part"

    def path(self, storage_name: str) -> Path:
        return self.files / storage_name

    def preview_path(self, preview_name: str) -> Path:
        return self.previews / preview_name

    def import_path(self, import_id: uuid.UUID | str) -> Path:
        return self.imports / f"{import_id}.upload"

    async def keep(self, temp: Path) -> str:
        """Move a complete upload into place; returns its new storage name."""
        storage_name = uuid.uuid4().hex
        await aiofiles.os.replace(temp, self.path(storage_name))
        return storage_name

    async def write_preview(self, storage_name: str, image: bytes, extension: str) -> str:
        name = f"{storage_name}.{extension}"
        temp = self.new_temp()
        try:
            async with aiofiles.open(temp, "wb") as out:
                await out.write(image)
            await aiofiles.os.replace(temp, self.preview_path(name))
        finally:
            await discard(temp)
        return name

    async def remove(self, storage_name: str | None, preview_name: str | None = None) -> None:
        if storage_name:
            await discard(self.path(storage_name))
        if preview_name:
            await discard(self.preview_path(preview_name))

    async def stale(self, folder: Path, older_than: float) -> list[str]:
        """Names in `folder` not modified for `older_than` seconds."""
        cutoff = time.time() - older_than
        names = []
        for name in await aiofiles.os.listdir(folder):
            with contextlib.suppress(FileNotFoundError):
                if (await aiofiles.os.stat(folder / name)).st_mtime < cutoff:
                    names.append(name)
        return names


async def discard(path: Path) -> None:
    """Remove a file that may already be gone."""
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)


async def remove_chat_files(app: web.Application, chat_id: uuid.UUID) -> None:
    """Before a chat is deleted: rows first, then their bytes, so no row outlives its bytes."""
    for row in await files.delete_for_chat(app[appkeys.DB], chat_id):
        await app[appkeys.STORAGE].remove(row["storage_name"], row["preview_image"])


async def storage_ctx(app: web.Application):
    storage = Storage(app[appkeys.SETTINGS].UPLOAD_DIR)
    await storage.create_dirs()
    app[appkeys.STORAGE] = storage
    yield

