"""Images as files under the data dir (embedded mode: one machine)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from imagegate.providers.base import GeneratedImage
from imagegate.storage.base import KEY_PATTERN, Stored, media_type, new_key


class LocalImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def save(self, image: GeneratedImage, now: float) -> str:
        key = new_key(image, now)
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

    def locate(self, key: str) -> Path | None:
        """The file of a key, or None for a malformed key or a missing file."""
        if not KEY_PATTERN.match(key):
            return None
        path = self.root / key
        return path if path.is_file() else None

    async def open(self, key: str, body: bool = True) -> Stored | None:
        path = self.locate(key)
        if path is None:
            return None
        return Stored(media_type(key), path.stat().st_size, path=path)

    async def read(self, key: str) -> bytes | None:
        path = self.locate(key)
        return None if path is None else await asyncio.to_thread(path.read_bytes)

    async def delete_days_before(self, day: str) -> int:
        return await asyncio.to_thread(delete_day_folders_before, self.root, day)


def delete_day_folders_before(root: Path, day: str) -> int:
    """Remove ``root``'s YYYY/MM/DD folders of days before ``day``; how many files went."""
    deleted = 0
    for folder in sorted(root.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]")):
        if folder.relative_to(root).as_posix() >= day:
            break
        deleted += sum(1 for item in folder.rglob("*") if item.is_file())
        shutil.rmtree(folder, ignore_errors=True)
    for empty in sorted(root.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]"), reverse=True):
        if not any(empty.iterdir()):
            empty.rmdir()
    return deleted
