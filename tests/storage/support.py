"""Support of the storage tests: a real S3 server on loopback (moto's server mode) with one
empty bucket, and images as a provider returns them."""

from __future__ import annotations

import io
import os
import re

import httpx
from moto.server import ThreadedMotoServer
from PIL import Image
from pydantic import SecretStr

from harness import Server, free_port
from imagegate.config import Settings
from imagegate.providers.base import GeneratedImage
from imagegate.services import cleanups

BUCKET = "images"
PREFIX = "gateway"


class Bucket:
    """The bucket ``images`` of a moto server; the settings that keep images under its prefix
    ``gateway/``."""

    def __init__(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.endpoint = f"http://127.0.0.1:{self.server._port}"
        self.running = False

    def start(self) -> None:
        self.server.start()
        self.running = True
        # moto keeps its buckets in the process, across servers: start empty.
        assert httpx.post(f"{self.endpoint}/moto-api/reset").status_code == 200
        assert httpx.put(f"{self.endpoint}/{BUCKET}").status_code == 200  # CreateBucket

    def stop(self) -> None:
        """The S3 server goes away (a bucket outage)."""
        if self.running:
            self.server.stop()
            self.running = False

    def keys(self) -> list[str]:
        """The bucket's keys, as S3's ListObjectsV2 gives them."""
        listed = httpx.get(f"{self.endpoint}/{BUCKET}", params={"list-type": "2"})
        assert listed.status_code == 200, listed.text
        return re.findall(r"<Key>([^<]+)</Key>", listed.text)

    def settings(self, settings: Settings, **more: object) -> Settings:
        """``settings`` with images kept in s3://images/gateway of this server (and ``more``)."""
        return settings.model_copy(
            update={
                "storage_url": f"s3://{BUCKET}/{PREFIX}",
                "s3_endpoint_url": self.endpoint,
                "s3_access_key_id": SecretStr("test"),
                "s3_secret_access_key": SecretStr("test"),
                **more,
            }
        )


def noise_png(width: int = 64, height: int = 48) -> GeneratedImage:
    """A PNG of random pixels: it does not compress (about 3 bytes a pixel)."""
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    return GeneratedImage(out.getvalue(), "png")


async def run_cleanups(server: Server) -> None:
    """The hourly cleanups (jobs' retention), now, in one transaction as the engines run them."""
    async with server.services.db.transaction() as session:
        for cleanup in cleanups(server.services):
            await cleanup(session, server.clock.now())
