"""The image store port, one suite run against each adapter: files in the data dir and an S3
bucket (moto's server on loopback). A saved image comes back whole, served and read; missing
and malformed keys are None; retention deletes whole days before a day; console thumbnails are
made from either."""

from __future__ import annotations

import calendar
import re

import pytest
from PIL import Image

from imagegate.config import Settings
from imagegate.storage.base import DAY_SECONDS, ImageStore, Stored, day_of
from imagegate.storage.setup import build_store
from imagegate.storage.thumbnails import Thumbnails

from .support import Bucket, noise_png

NOW = float(calendar.timegm((2026, 3, 10, 12, 0, 0)))  # noon UTC, 10 March 2026


@pytest.fixture(params=["files", "bucket"])
def store(request: pytest.FixtureRequest, settings: Settings) -> ImageStore:
    if request.param == "files":
        return build_store(settings)
    bucket: Bucket = request.getfixturevalue("bucket")
    return build_store(bucket.settings(settings))


def missing_twin(key: str) -> str:
    """A well-formed key of the same day that names no image."""
    return f"{key[:11]}{'x' * 32}{key[-4:]}"


async def served(stored: Stored) -> bytes:
    if stored.path is not None:
        return stored.path.read_bytes()
    assert stored.chunks is not None
    return b"".join([chunk async for chunk in stored.chunks])


async def test_a_saved_image_is_served_and_read_whole(store: ImageStore) -> None:
    image = noise_png()
    key = await store.save(image, NOW)
    found = await store.open(key)
    head = await store.open(key, body=False)
    assert re.fullmatch(r"2026/03/10/[A-Za-z0-9_-]{32}\.png", key)
    assert found is not None
    assert (found.media_type, found.size) == ("image/png", len(image.data))
    assert await served(found) == image.data
    assert head is not None
    assert (head.size, head.chunks) == (len(image.data), None)
    assert await store.read(key) == image.data


async def test_missing_and_malformed_keys_are_none(store: ImageStore) -> None:
    key = await store.save(noise_png(), NOW)
    for absent in (missing_twin(key), "../../secret.png", f"{key}/..", "2026/03/10/short.png"):
        assert await store.open(absent) is None, absent
        assert await store.open(absent, body=False) is None, absent
        assert await store.read(absent) is None, absent


async def test_retention_deletes_every_image_of_the_days_before_a_day(store: ImageStore) -> None:
    old = [await store.save(noise_png(), NOW - 40 * DAY_SECONDS) for _ in range(2)]
    older = await store.save(noise_png(), NOW - 400 * DAY_SECONDS)
    first_kept = await store.save(noise_png(), NOW - 2 * DAY_SECONDS)
    today = await store.save(noise_png(), NOW)
    assert await store.delete_days_before(day_of(NOW - 2 * DAY_SECONDS)) == 3
    left = [await store.read(key) is not None for key in (*old, older, first_kept, today)]
    assert left == [False, False, False, True, True]
    assert await store.delete_days_before(day_of(NOW - 2 * DAY_SECONDS)) == 0


async def test_thumbnails_are_made_from_the_stored_image(
    store: ImageStore, settings: Settings
) -> None:
    key = await store.save(noise_png(320, 200), NOW)
    thumbnails = Thumbnails(store, settings.data_dir / "thumbnails")
    path = await thumbnails.get(key)
    assert path == thumbnails.path_of(key)
    with Image.open(path) as made:
        assert (made.format, made.size) == ("WEBP", (160, 100))
    assert await thumbnails.get(missing_twin(key)) is None
