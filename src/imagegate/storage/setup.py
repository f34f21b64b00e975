"""The image store a process uses, chosen by IMAGEGATE_STORAGE_URL."""

from __future__ import annotations

from imagegate.config import Settings
from imagegate.storage.base import ImageStore
from imagegate.storage.local import LocalImageStore
from imagegate.storage.s3 import s3_store


def build_store(settings: Settings) -> ImageStore:
    """Files under data_dir/images when the URL is empty; an S3 bucket for s3://bucket/prefix.
    ValueError for any other URL."""
    url = settings.storage_url
    if not url:
        return LocalImageStore(settings.data_dir / "images")
    if url.startswith("s3://"):
        return s3_store(settings)
    raise ValueError(f"IMAGEGATE_STORAGE_URL {url!r}: leave it empty (local files) or s3://...")
