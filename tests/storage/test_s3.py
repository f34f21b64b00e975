"""Images in an S3 bucket, against a real S3 server on loopback (moto's server mode): created,
served (streamed or redirected to a presigned URL), expired and deleted, and the bucket down
while serving and cleaning up. (A bucket down while a task stores its image:
test_write_failures.py; what every store does: test_stores.py.)"""

from __future__ import annotations

import calendar
import logging

import httpx
import pytest

from harness import Server, running_server
from imagegate.config import Settings
from imagegate.storage.base import DAY_SECONDS
from imagegate.storage.s3 import STREAM_CHUNK
from imagegate.storage.setup import build_store

from .support import BUCKET, Bucket, noise_png, run_cleanups

NOW = float(calendar.timegm((2026, 3, 10, 12, 0, 0)))


async def completed_image(server: Server) -> tuple[str, str]:
    """A completed task's image URL and its key."""
    account = await server.account()
    task = await server.run(account, output_format="png")
    assert task["status"] == "completed", task
    [url] = task["output"]["urls"]
    return url, url.split("/images/", 1)[1]


async def test_images_are_stored_in_the_bucket_and_streamed_by_the_api(
    settings: Settings, bucket: Bucket
) -> None:
    async with running_server(bucket.settings(settings)) as server:
        url, key = await completed_image(server)
        assert bucket.keys() == [f"gateway/{key}"]
        served = await server.http.get(url)
        head = await server.http.head(url)
        missing = await server.http.get(url.replace(key[-12:], "x" * 8 + key[-4:]))
    assert served.status_code == 200
    assert served.content.startswith(b"\x89PNG")
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-length"] == str(len(served.content))
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(served.content))
    assert missing.status_code == 404
    assert "does not exist" in missing.json()["error"]["message"]


async def test_redirect_mode_answers_with_a_presigned_url(
    settings: Settings, bucket: Bucket
) -> None:
    redirecting = bucket.settings(settings, s3_serve="redirect")
    async with running_server(redirecting) as server:
        url, key = await completed_image(server)
        answer = await server.http.get(url)
        missing = await server.http.get(url.replace(key[-12:], "x" * 8 + key[-4:]))
    assert missing.status_code == 404
    assert answer.status_code == 307
    location = answer.headers["location"]
    assert location.startswith(f"{bucket.endpoint}/{BUCKET}/gateway/{key}?")
    assert "X-Amz-Signature=" in location
    async with httpx.AsyncClient() as http:
        fetched = await http.get(location)
        unsigned = await http.get(location.split("?")[0])
    assert fetched.status_code == 200
    assert fetched.content.startswith(b"\x89PNG")
    assert unsigned.status_code == 403  # not without the signature


async def test_an_expired_image_answers_404_and_the_cleanup_deletes_it(
    settings: Settings, bucket: Bucket
) -> None:
    kept_a_day = bucket.settings(settings, image_retention_days=1.0)
    async with running_server(kept_a_day) as server:
        url, key = await completed_image(server)
        assert (await server.http.get(url)).status_code == 200
        server.clock.advance(2 * DAY_SECONDS)
        expired = await server.http.get(url)
        assert bucket.keys() == [f"gateway/{key}"]  # answered 404 before the cleanup ran
        await run_cleanups(server)
    assert expired.status_code == 404
    message = expired.json()["error"]["message"]
    assert message == f"Image '{key}' has expired: images are kept 1 day."
    assert bucket.keys() == []


async def test_images_are_streamed_as_they_arrive(settings: Settings, bucket: Bucket) -> None:
    store = build_store(bucket.settings(settings))
    image = noise_png(256, 256)
    assert len(image.data) > 2 * STREAM_CHUNK
    found = await store.open(await store.save(image, NOW))
    assert found is not None
    assert found.chunks is not None
    chunks = [chunk async for chunk in found.chunks]
    assert len(chunks) > 1  # not held whole before the first byte goes out
    assert b"".join(chunks) == image.data


async def test_the_bucket_down_while_serving_answers_503(
    settings: Settings, bucket: Bucket
) -> None:
    async with running_server(bucket.settings(settings)) as server:
        url, _ = await completed_image(server)
        bucket.stop()
        answers = [await server.http.get(url), await server.http.head(url)]
    for answer in answers:
        assert answer.status_code == 503
    assert answers[0].json()["error"] == {
        "code": "upstream_error",
        "message": "The image store is unavailable; try again shortly.",
        "type": "upstream_error",
    }


async def test_the_bucket_down_during_the_cleanup_is_logged_not_raised(
    settings: Settings, bucket: Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    kept_a_day = bucket.settings(settings, image_retention_days=1.0)
    async with running_server(kept_a_day) as server:
        await completed_image(server)
        bucket.stop()
        server.clock.advance(2 * DAY_SECONDS)
        with caplog.at_level(logging.WARNING, logger="imagegate.storage.retention"):
            await run_cleanups(server)  # the hour's other rules share its transaction
    [warning] = [r.getMessage() for r in caplog.records if r.name.endswith("retention")]
    assert "not deleted: Generic S3 error" in warning
