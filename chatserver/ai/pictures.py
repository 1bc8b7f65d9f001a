"""Images attached to a message, as a vision model receives them: a data
URL of the picture scaled down so that its longest side is at most
IMAGE_MAX_PIXELS (smaller costs the model fewer tokens, and models scale
larger ones down anyway), PNG where it has transparency, else JPEG."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path

from PIL import Image

# the extractor already refused images past this when it made their previews
MAX_SOURCE_PIXELS = 40_000_000


def data_url(path: Path, max_side: int) -> str | None:
    """The picture as a data URL, or None when it cannot be read. Blocking."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_SOURCE_PIXELS:
                return None
            image.draft("RGB", (max_side, max_side))
            image.thumbnail((max_side, max_side))
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            picture = image.convert("RGBA" if transparent else "RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    out = io.BytesIO()
    picture.save(out, "PNG" if transparent else "JPEG", quality=85)
    kind = "png" if transparent else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(out.getvalue()).decode()}"


async def data_urls(paths: list[Path], max_side: int) -> list[str]:
    found = [await asyncio.to_thread(data_url, path, max_side) for path in paths]
    return [url for url in found if url]
