"""IMAGEGATE_IMAGE_RETENTION_DAYS with images as local files: an image past it answers 404
saying it expired, the hourly cleanup deletes it (and its thumbnail); by default images stay."""

from __future__ import annotations

from harness import Server, running_server
from imagegate.config import Settings
from imagegate.storage.base import DAY_SECONDS

from .support import run_cleanups


async def test_an_image_past_the_retention_expires_and_is_deleted(settings: Settings) -> None:
    images = settings.data_dir / "images"
    thumbnails = settings.data_dir / "thumbnails"
    async with running_server(settings.model_copy(update={"image_retention_days": 3.0})) as s:
        account = await s.account()
        old = await s.run(account)
        [old_url] = old["output"]["urls"]
        old_key = old_url.split("/images/", 1)[1]
        (thumbnails / old_key).parent.mkdir(parents=True)
        (thumbnails / f"{old_key}.webp").write_bytes(b"a thumbnail")
        s.clock.advance(2 * DAY_SECONDS)
        assert (await s.http.get(old_url)).status_code == 200  # 2 days old: kept
        new = await s.run(account)
        s.clock.advance(2 * DAY_SECONDS)
        expired = await s.http.get(old_url)
        assert (images / old_key).is_file()  # expired before the cleanup ran
        await run_cleanups(s)
        [new_url] = new["output"]["urls"]
        kept = await s.http.get(new_url)
    assert expired.status_code == 404
    assert expired.json()["error"]["message"] == (
        f"Image '{old_key}' has expired: images are kept 3 days."
    )
    assert not (images / old_key).exists()
    assert not (thumbnails / f"{old_key}.webp").exists()
    assert kept.status_code == 200


async def test_without_a_retention_images_are_kept(server: Server) -> None:
    account = await server.account()
    [url] = (await server.run(account))["output"]["urls"]
    server.clock.advance(3650 * DAY_SECONDS)
    await run_cleanups(server)
    assert (await server.http.get(url)).status_code == 200
