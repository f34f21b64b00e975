"""Small previews of hosted images for the console, made once with Pillow and kept as files.

A thumbnail lives at ``<thumbnails root>/<image key>.webp``; it is made on first request, in a
thread (decoding is blocking work), written to a temporary name and renamed, so a reader never
sees half a file and two requests racing to make it only both write the same bytes.

The sources are our own stored images (read through the image store, so from the bucket too:
the thumbnails stay a local cache of each process), every one passed the pixel limit of
``storage.images.prepare_image`` on the way in, so no size check is repeated here.
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
from pathlib import Path

from PIL import Image

from imagegate.storage.base import KEY_PATTERN, ImageStore

THUMBNAILS = "thumbnails"  # their folder in the data dir
THUMBNAIL_SIZE = 160  # pixels on the longest side
WEBP_QUALITY = 80
MEDIA_TYPE = "image/webp"


class Thumbnails:
    def __init__(self, images: ImageStore, root: Path, size: int = THUMBNAIL_SIZE) -> None:
        self.images = images
        self.root = root
        self.size = size

    def path_of(self, key: str) -> Path:
        """Where the thumbnail of image ``key`` is kept (made or not)."""
        return self.root / f"{key}.webp"

    async def get(self, key: str) -> Path | None:
        """The thumbnail file of image ``key``, made now if it is not there yet; None when the
        key is malformed or the image is missing."""
        if not KEY_PATTERN.match(key):  # also refuses a key that could leave the root
            return None
        path = self.path_of(key)
        if path.is_file():
            return path
        source = await self.images.read(key)
        if source is None:
            return None
        await asyncio.to_thread(self._make, source, path)
        return path

    def _make(self, source: bytes, path: Path) -> None:
        with Image.open(io.BytesIO(source)) as image:
            image.thumbnail((self.size, self.size))  # keeps the aspect ratio; decodes reduced
            preview = image if image.mode in ("RGB", "RGBA") else image.convert("RGBA")
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{secrets.token_hex(8)}.partial")
            try:
                preview.save(partial, "WEBP", quality=WEBP_QUALITY)
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
