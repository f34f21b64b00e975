"""What every image store does, and the rules of image keys: ``YYYY/MM/DD/<unguessable>.<ext>``
(the day the image was stored, UTC), the path of its public URL after ``/images/``.

The key's day is also its age: an image is expired once its day is more than
IMAGEGATE_IMAGE_RETENTION_DAYS old, whether or not the hourly cleanup has deleted it yet.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from imagegate.providers.base import GeneratedImage

KEY_PATTERN = re.compile(r"^\d{4}/\d{2}/\d{2}/[A-Za-z0-9_-]{20,64}\.(png|jpg)$")
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
DAY_SECONDS = 86_400


class StorageUnavailable(Exception):
    """The store could not be reached (a bucket down, a network error): not the image's fault,
    so a caller may try again (a job attempt is retried; a download answers 503)."""


@dataclass(frozen=True)
class Stored:
    """An image as the API serves it: a local file, or a stream of chunks (None for HEAD)."""

    media_type: str
    size: int
    path: Path | None = None
    chunks: AsyncIterator[bytes] | None = None


class ImageStore(Protocol):
    async def save(self, image: GeneratedImage, now: float) -> str:
        """Store ``image``; returns its key. Raises (OSError, StorageUnavailable) when the
        image could not be stored: the task's job is then retried, never completed without it."""
        ...

    async def open(self, key: str, body: bool = True) -> Stored | None:
        """The image ``key`` for serving (its chunks only when ``body``); None when missing or
        malformed. Raises StorageUnavailable when the store cannot say."""
        ...

    async def read(self, key: str) -> bytes | None:
        """The whole image ``key``, or None when it is missing."""
        ...

    async def delete_days_before(self, day: str) -> int:
        """Delete every image stored on a day before ``day`` (YYYY/MM/DD); how many went."""
        ...


def new_key(image: GeneratedImage, now: float) -> str:
    return f"{day_of(now)}/{secrets.token_urlsafe(24)}.{image.extension}"


def day_of(moment: float) -> str:
    return time.strftime("%Y/%m/%d", time.gmtime(moment))


def media_type(key: str) -> str:
    return MEDIA_TYPES[key.rsplit(".", 1)[1]]


def first_kept_day(now: float, retention_days: float) -> str:
    """Images of days before this one are expired."""
    return day_of(now - retention_days * DAY_SECONDS)


def expired(key: str, now: float, retention_days: float | None) -> bool:
    """Whether a well-formed ``key`` is past the retention (never, without one)."""
    return retention_days is not None and key[:10] < first_kept_day(now, retention_days)
