"""PostgreSQL: the account foreign keys a create writes are checked at commit

A create inserts a task and a ledger entry that reference the account whose balance it charges.
Checked at once, each insert took a KEY SHARE lock on the account's row while other creates of
the account held its row for their charge: PostgreSQL then records the row's lockers as a
multixact, and on one busy account that bookkeeping doubled the server's CPU per create
(bench/pg_create_cost.py: about 1,150 µs instead of 560 with 10 connections). Checked at commit,
after the create's own charge has locked the row, the check needs no lock of its own. The keys
are enforced as before: a violation fails the commit. SQLite has no row locks; it keeps them.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

KEYS = (("tasks", "tasks_account_id_fkey"), ("ledger_entries", "ledger_entries_account_id_fkey"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, key in KEYS:
            op.execute(f"ALTER TABLE {table} ALTER CONSTRAINT {key} DEFERRABLE INITIALLY DEFERRED")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, key in KEYS:
            op.execute(f"ALTER TABLE {table} ALTER CONSTRAINT {key} NOT DEFERRABLE")
