"""PostgreSQL: an index on the lock of procrastinate's waiting and running jobs

procrastinate's fetch takes a job only when no other job with its lock runs or waits before it.
It checks that for every due job of the worker's queues before it picks the first: without an
index that starts with the lock, each check read the whole (id, lock) index, so one fetch cost
about 300 ms with 5,000 jobs waiting (a backlog drained at about 10 jobs a second). With this
index each check is one lookup: about 8 ms per fetch at that depth. Every task's job has a lock
(``task:<id>``: two runs of one task never overlap), so this is the index that check needs.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE INDEX imagegate_procrastinate_jobs_lock ON procrastinate_jobs (lock)"
        " WHERE status IN ('todo', 'doing')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX imagegate_procrastinate_jobs_lock")
