"""Images in an S3 bucket, against a real S3 server on loopback (moto's server mode): created,
served (streamed or redirected to a presigned URL), expired, and a bucket outage that fails the
task with a refund."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from harness import Server, free_port, running_server, wait_for
from imagegate.config import Settings
from imagegate.services import cleanups
from imagegate.storage.base import DAY_SECONDS

BUCKET = "images"


@dataclass
class Bucket:
    endpoint: str

    def keys(self) -> list[str]:
        """The bucket's keys, as S3's ListObjectsV2 gives them."""
        listed = httpx.get(f"{self.endpoint}/{BUCKET}", params={"list-type": "2"})
        assert listed.status_code == 200, listed.text
        return re.findall(r"<Key>([^<]+)</Key>", listed.text)


@pytest.fixture
def bucket() -> Iterator[Bucket]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._port}"
    try:
        # moto keeps its buckets in the process, across servers: start empty.
        assert httpx.post(f"{endpoint}/moto-api/reset").status_code == 200
        assert httpx.put(f"{endpoint}/{BUCKET}").status_code == 200  # CreateBucket
        yield Bucket(endpoint)
    finally:
        server.stop()


def in_bucket(settings: Settings, endpoint: str, **more: object) -> Settings:
    return settings.model_copy(
        update={
            "storage_url": f"s3://{BUCKET}/gateway",
            "s3_endpoint_url": endpoint,
            "s3_access_key_id": SecretStr("test"),
            "s3_secret_access_key": SecretStr("test"),
            **more,
        }
    )


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
    async with running_server(in_bucket(settings, bucket.endpoint)) as server:
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
    redirecting = in_bucket(settings, bucket.endpoint, s3_serve="redirect")
    async with running_server(redirecting) as server:
        url, key = await completed_image(server)
        answer = await server.http.get(url)
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
    kept_a_day = in_bucket(settings, bucket.endpoint, image_retention_days=1.0)
    async with running_server(kept_a_day) as server:
        url, key = await completed_image(server)
        assert (await server.http.get(url)).status_code == 200
        server.clock.advance(2 * DAY_SECONDS)
        expired = await server.http.get(url)
        assert bucket.keys() == [f"gateway/{key}"]  # answered 404 before the cleanup ran
        async with server.services.db.transaction() as session:
            for cleanup in cleanups(server.services):
                await cleanup(session, server.clock.now())
    assert expired.status_code == 404
    message = expired.json()["error"]["message"]
    assert message == f"Image '{key}' has expired: images are kept 1 days."
    assert bucket.keys() == []


async def test_a_bucket_outage_fails_the_task_with_a_refund(settings: Settings) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # no S3 server answers there
    down = in_bucket(settings, nobody, job_max_attempts=2)
    async with running_server(down) as server:
        account = await server.account(credits=1000)
        task = await server.run(account)
        assert await server.ledger(account) == (1000, 1000)  # charged, then refunded

        async def given_up() -> bool:
            return [job.status for job in await server.jobs()] in ([], ["failed"])

        await wait_for(given_up, within=30)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "internal_error"
    assert "output" not in task
