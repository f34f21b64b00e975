"""The image store a process uses, chosen by the settings."""

from __future__ import annotations

from imagegate.config import Settings
from imagegate.storage.local import LocalImageStore


def build_store(settings: Settings) -> LocalImageStore:
    """Files under data_dir/images (IMAGEGATE_STORAGE_URL empty)."""
    return LocalImageStore(settings.data_dir / "images")
