"""Images as files under the data dir, named YYYY/MM/DD/<unguessable>.<ext>."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from pathlib import Path

from imagegate.providers.base import GeneratedImage

KEY_PATTERN = re.compile(r"^\d{4}/\d{2}/\d{2}/[A-Za-z0-9_-]{20,64}\.(png|jpg)$")
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg"}


class LocalImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def save(self, image: GeneratedImage, now: float) -> str:
        """Store ``image``; returns its key, the path part of its public URL after /images/."""
        day = time.strftime("%Y/%m/%d", time.gmtime(now))
        key = f"{day}/{secrets.token_urlsafe(24)}.{image.extension}"
        await asyncio.to_thread(self._write, key, image.data)
        return key

    def _write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)  # readers never see a half-written image

    def locate(self, key: str) -> tuple[Path, str] | None:
        """The file and media type for a key, or None for a malformed key or a missing file."""
        if not KEY_PATTERN.match(key):
            return None
        path = self.root / key
        if not path.is_file():
            return None
        return path, MEDIA_TYPES[key.rsplit(".", 1)[1]]
