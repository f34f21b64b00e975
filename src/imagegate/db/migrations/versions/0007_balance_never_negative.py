"""accounts.credits >= 0, enforced by the database

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CONSTRAINT = "ck_accounts_credits_non_negative"


def upgrade() -> None:
    # The code never wrote a negative balance; if one is there anyway, say which accounts rather
    # than fail on the constraint with the backend's own words (or, worse, change balances).
    negative = (
        op.get_bind()
        .execute(sa.text("SELECT id FROM accounts WHERE credits < 0 ORDER BY id LIMIT 5"))
        .scalars()
        .all()
    )
    if negative:
        raise RuntimeError(
            "accounts with a negative balance (correct them first, with a ledger entry): "
            + ", ".join(negative)
        )
    # SQLite cannot add a constraint to a table: batch mode copies the table into a new one.
    with op.batch_alter_table("accounts") as batch:
        batch.create_check_constraint(CONSTRAINT, sa.text("credits >= 0"))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(CONSTRAINT, type_="check")
