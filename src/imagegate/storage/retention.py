"""IMAGEGATE_IMAGE_RETENTION_DAYS: images (and their console thumbnails) of days past the
retention are deleted hourly, with the jobs' retention (jobs/admin.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from imagegate.jobs.admin import Cleanup
from imagegate.storage.base import ImageStore, StorageUnavailable, first_kept_day
from imagegate.storage.local import delete_day_folders_before

log = logging.getLogger(__name__)


def image_retention(store: ImageStore, thumbnails: Path, days: float) -> Cleanup:
    """The hourly cleanup of images older than ``days``."""

    async def delete_expired_images(session: AsyncSession, now: float) -> None:
        day = first_kept_day(now, days)
        await asyncio.to_thread(delete_day_folders_before, thumbnails, day)
        try:
            deleted = await store.delete_days_before(day)
        except (StorageUnavailable, OSError) as exc:
            # The other rules of this hour's transaction still commit; the next hour retries.
            log.warning("retention: images stored before %s not deleted: %s", day, exc)
            return
        if deleted:
            log.info("retention: deleted %d images stored before %s", deleted, day)

    return delete_expired_images
