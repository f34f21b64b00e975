"""A storage write that fails (a disk that refuses the file, a bucket that is down) is retried
by the task's job, then fails the task with a refund: a task is never completed without its
image. Run against each store."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from harness import Server, running_server, wait_for
from imagegate.config import Settings
from imagegate.db.models import LedgerEntry
from imagegate.jobs.admin import JobInfo

from .support import Bucket

ATTEMPTS = 2


@pytest.fixture(params=["files", "bucket"])
def broken(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Settings whose image store refuses every write."""
    if request.param == "files":
        images = settings.data_dir / "images"
        images.parent.mkdir(parents=True, exist_ok=True)
        images.write_bytes(b"")  # a file where the images' folder goes: no image can be written
        return settings.model_copy(update={"job_max_attempts": ATTEMPTS})
    bucket: Bucket = request.getfixturevalue("bucket")
    bucket.stop()  # nobody answers at its endpoint any more
    return bucket.settings(settings, job_max_attempts=ATTEMPTS)


async def entries_of(server: Server, task_id: str) -> list[tuple[str, int]]:
    """The task's ledger entries: (kind, amount), oldest first."""
    async with server.services.db.sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount)
            .where(LedgerEntry.task_id == task_id)
            .order_by(LedgerEntry.id)
        )
        return [(kind, amount) for kind, amount in rows]


async def test_a_failing_write_is_retried_then_the_task_fails_with_a_refund(
    broken: Settings,
) -> None:
    async with running_server(broken) as server:
        account = await server.account(credits=1000)
        task = await server.run(account)

        async def given_up() -> list[JobInfo]:
            return [job for job in await server.jobs(status="failed")]

        [job] = await wait_for(given_up)
        ledger = await entries_of(server, task["id"])
        assert await server.ledger(account) == (1000, 1000)
    assert task["status"] == "failed"
    assert task["error"]["code"] == "internal_error"
    assert "output" not in task
    assert job.attempts == ATTEMPTS
    [(charge, price), (refund, back)] = ledger
    assert (charge, refund, back) == ("charge", "refund", -price)
    assert price < 0
