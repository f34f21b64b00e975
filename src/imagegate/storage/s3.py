"""Images in an S3-compatible bucket (AWS S3, MinIO, R2, ...), through obstore, so API and
worker processes on different machines share them. Keys keep their form under the URL's
prefix: ``s3://bucket/prefix`` stores ``prefix/YYYY/MM/DD/<name>.png``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from imagegate.config import Settings
from imagegate.providers.base import GeneratedImage
from imagegate.storage.base import KEY_PATTERN, StorageUnavailable, Stored, media_type, new_key

# A failed request is retried a little here; the job's own retries (jobs/kinds.py) do the rest,
# so a bucket that is down fails an attempt in seconds, not obstore's default three minutes.
RETRY: Any = {"max_retries": 2, "retry_timeout": timedelta(seconds=10)}
SIGNED_URL_LIFETIME = timedelta(minutes=10)
# Served images go out in pieces of this size as they arrive (obstore's default would hold up
# to 10 MiB, i.e. a whole image, before sending the first byte).
STREAM_CHUNK = 64 * 1024
_DELETE_BATCH = 1000  # S3's DeleteObjects takes at most this many keys


class S3ImageStore:
    def __init__(self, store: S3Store) -> None:
        self.store = store

    async def save(self, image: GeneratedImage, now: float) -> str:
        key = new_key(image, now)
        attributes: Any = {"Content-Type": image.content_type}
        with _reachable():
            await obstore.put_async(self.store, key, image.data, attributes=attributes)
        return key

    async def open(self, key: str, body: bool = True) -> Stored | None:
        if not KEY_PATTERN.match(key):
            return None
        try:
            with _reachable():
                if not body:
                    meta = await obstore.head_async(self.store, key)
                    return Stored(media_type(key), meta["size"])
                result = await obstore.get_async(self.store, key)
        except FileNotFoundError:
            return None
        return Stored(
            media_type(key), result.meta["size"], chunks=_chunks(result.stream(STREAM_CHUNK))
        )

    async def read(self, key: str) -> bytes | None:
        if not KEY_PATTERN.match(key):
            return None
        try:
            with _reachable():
                result = await obstore.get_async(self.store, key)
                return bytes(await result.bytes_async())
        except FileNotFoundError:
            return None

    async def signed_url(self, key: str) -> str | None:
        """A presigned GET URL for ``key`` (valid SIGNED_URL_LIFETIME); None when missing."""
        if await self.open(key, body=False) is None:
            return None
        with _reachable():  # signing may first fetch credentials (an instance role's)
            return await obstore.sign_async(self.store, "GET", key, SIGNED_URL_LIFETIME)

    async def delete_days_before(self, day: str) -> int:
        deleted = 0
        with _reachable():
            for folder in await self._days():
                if folder >= day:
                    break
                deleted += await self._delete_folder(folder)
        return deleted

    async def _delete_folder(self, folder: str) -> int:
        keys = [meta["path"] async for batch in obstore.list(self.store, f"{folder}/")
                for meta in batch]  # fmt: skip
        for start in range(0, len(keys), _DELETE_BATCH):
            await obstore.delete_async(self.store, keys[start : start + _DELETE_BATCH])
        return len(keys)

    async def _days(self) -> list[str]:
        """The YYYY/MM/DD folders, in order (three levels of delimited listing)."""
        folders = [""]
        for _ in range(3):
            listed = await asyncio.gather(
                *(obstore.list_with_delimiter_async(self.store, f"{f}/" if f else None)
                  for f in folders)
            )  # fmt: skip
            folders = sorted(p.rstrip("/") for result in listed for p in result["common_prefixes"])
        return folders


@contextmanager
def _reachable() -> Iterator[None]:
    """obstore's errors (a bucket down, refused credentials) as StorageUnavailable, with the
    first line of obstore's message (the rest is its debug dump)."""
    try:
        yield
    except BaseError as exc:
        raise StorageUnavailable(str(exc).split("\n", 1)[0]) from exc


async def _chunks(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield bytes(chunk)


def s3_store(settings: Settings) -> S3ImageStore:
    """The store of IMAGEGATE_STORAGE_URL=s3://bucket[/prefix] and the S3 settings."""
    parts = urlsplit(settings.storage_url)
    if not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"IMAGEGATE_STORAGE_URL {settings.storage_url!r}: write s3://bucket or s3://bucket/prefix"
        )
    endpoint = settings.s3_endpoint_url
    options: dict[str, Any] = {"region": settings.s3_region}
    if endpoint:  # another S3 store (MinIO, R2, ...): path-style, plain HTTP allowed if named
        options |= {"endpoint": endpoint, "virtual_hosted_style_request": False}
    key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    if key_id.get_secret_value():
        options |= {"access_key_id": key_id.get_secret_value(),
                    "secret_access_key": secret.get_secret_value()}  # fmt: skip
    client: Any = {"allow_http": endpoint.startswith("http://"), "connect_timeout": "5s",
                   "timeout": f"{int(settings.upstream_timeout)}s"}  # fmt: skip
    store = S3Store(
        parts.netloc, prefix=parts.path.strip("/") or None, client_options=client,
        retry_config=RETRY, **options,
    )  # fmt: skip
    return S3ImageStore(store)
