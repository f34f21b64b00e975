"""PostgreSQL: jobs move to procrastinate (its schema, as the installed release ships it)

procrastinate's own tables, types and functions are created from the schema file of the
installed release (procrastinate~=3.10, whose newest schema migration is
03.04.00_50_post_add_retry_failed_job_procedure: db/migrate.py's PROCRASTINATE_SCHEMA;
tests/jobs/test_engines.py fails when a newer release adds one, so that an upgrade comes with a
migration that applies it). Jobs waiting in our table move over unchanged (due time, attempts,
failures), so an upgrade under load loses none. procrastinate keeps no error text, so
``job_errors`` keeps each job's last one for operators. SQLite keeps the table queue, whose jobs
get ``finished_at`` (for the retention).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_JOB_ERRORS = """
CREATE TABLE job_errors (
    job_id bigint PRIMARY KEY REFERENCES procrastinate_jobs (id) ON DELETE CASCADE,
    error text NOT NULL
)
"""

_MOVE_IN = """
INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, scheduled_at, attempts)
VALUES (:queue, :kind, CAST(:args AS jsonb), CAST(:status AS procrastinate_job_status),
        to_timestamp(:run_at), :attempts)
RETURNING id
"""

_MOVE_OUT = """
INSERT INTO jobs (queue, kind, args, status, run_at, attempts, created_at)
SELECT queue_name, task_name, args::json,
       CASE WHEN status = 'failed' THEN 'failed' ELSE 'todo' END,
       extract(epoch FROM coalesce(scheduled_at, now())), attempts, extract(epoch FROM now())
  FROM procrastinate_jobs WHERE status IN ('todo', 'doing', 'failed') ORDER BY id
"""

_DROP = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
    procrastinate_workers CASCADE;
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname LIKE 'procrastinate\\_%' LOOP
        EXECUTE 'DROP FUNCTION ' || f || ' CASCADE';
    END LOOP;
END $$;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
    procrastinate_job_status CASCADE;
"""


def upgrade() -> None:
    op.add_column("jobs", sa.Column("finished_at", sa.Float(), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    _run(SchemaManager.get_schema())
    _run(_JOB_ERRORS)
    bind = op.get_bind()
    waiting = bind.execute(
        sa.text("SELECT queue, kind, args, status, run_at, attempts, last_error FROM jobs")
    )
    for queue, kind, args, status, run_at, attempts, error in waiting.all():
        moved = {
            "queue": queue,
            "kind": kind,
            "args": json.dumps(args),
            "run_at": run_at,
            "status": "failed" if status == "failed" else "todo",
            "attempts": attempts,
        }
        job_id = bind.execute(sa.text(_MOVE_IN), moved).scalar_one()
        if error:
            insert = "INSERT INTO job_errors (job_id, error) VALUES (:id, :error)"
            bind.execute(sa.text(insert), {"id": job_id, "error": error})
    _run("DELETE FROM jobs")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run(_MOVE_OUT)
        _run("DROP TABLE job_errors")
        _run(_DROP)
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("finished_at")


def _run(sql: str) -> None:
    """A script as it is (the driver would read its % signs as placeholders)."""
    op.get_bind().exec_driver_sql(sql.replace("%", "%%"))
