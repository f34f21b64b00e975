"""payments (Stripe Checkout), redemption codes, ledger sources, low-balance alerts

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("reference", sa.String(length=255), nullable=True))
        batch.create_unique_constraint("uq_ledger_source_reference", ["source", "reference"])
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("webhook_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("low_balance_threshold", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column(
                "low_balance_notified", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "checkout_sessions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("paid_at", sa.Float(), nullable=True),
        sa.Column("payment_intent", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_checkout_sessions_account_id", "checkout_sessions", ["account_id"])
    op.create_table(
        "payment_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payment_events_account_id", "payment_events", ["account_id"])
    op.create_table(
        "code_batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("credits", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "redemption_codes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("redeemed_at", sa.Float(), nullable=True),
        sa.Column("account_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["code_batches.id"]),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_redemption_codes_batch_id", "redemption_codes", ["batch_id"])


def downgrade() -> None:
    op.drop_index("ix_redemption_codes_batch_id", "redemption_codes")
    op.drop_table("redemption_codes")
    op.drop_table("code_batches")
    op.drop_index("ix_payment_events_account_id", "payment_events")
    op.drop_table("payment_events")
    op.drop_index("ix_checkout_sessions_account_id", "checkout_sessions")
    op.drop_table("checkout_sessions")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("low_balance_notified")
        batch.drop_column("low_balance_threshold")
        batch.drop_column("webhook_url")
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_constraint("uq_ledger_source_reference", type_="unique")
        batch.drop_column("reference")
        batch.drop_column("source")
