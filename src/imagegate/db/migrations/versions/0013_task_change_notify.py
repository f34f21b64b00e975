"""PostgreSQL: the database announces every change of a task's status

A trigger sends ``NOTIFY imagegate_tasks, '<task id>'`` (tasks/watch.py listens) whenever an
UPDATE changes a task's status, delivered at commit like the NOTIFY the code sent before. So
every change is announced, whichever statement made it, and starting or ending a task costs no
round trip of its own for the announcement. SQLite has no NOTIFY: its process announces after
the commit (tasks/watch.py).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION imagegate_announce_task() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN PERFORM pg_notify('imagegate_tasks', NEW.id); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER tasks_announce_status AFTER UPDATE OF status ON tasks FOR EACH ROW"
        " WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION imagegate_announce_task()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER tasks_announce_status ON tasks")
    op.execute("DROP FUNCTION imagegate_announce_task()")
