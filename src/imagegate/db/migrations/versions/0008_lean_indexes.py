"""Drop two indexes no query uses, which every create paid for

tasks.status: every query on tasks is by id, account or key. ledger_entries.account_id: the
(account_id, id) and (account_id, created_at) indexes serve every query by account.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_tasks_status", table_name="tasks")
    op.drop_index("ix_ledger_entries_account_id", table_name="ledger_entries")


def downgrade() -> None:
    op.create_index("ix_ledger_entries_account_id", "ledger_entries", ["account_id"])
    op.create_index("ix_tasks_status", "tasks", ["status"])
