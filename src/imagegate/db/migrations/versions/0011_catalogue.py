"""The catalogue as data: models, price plans, and what a task's model reports

``models`` holds each model offered (seeded with ideogram-v4 as the reference prices it);
``catalog_state.version`` is bumped in the transaction of every change to it, and read in the
create's one statement, so every API process sees a change on its next create. ``price_plans``
multiply an account's prices; ``tasks.reported_model`` keeps the ``output.metadata.model`` of
the model as it was when the task was created (NULL for the tasks from before: the seed's).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SEED_REPORTS = "ideogram-ai/ideogram-v4"


def upgrade() -> None:
    models = op.create_table(
        "models",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("prices", sa.JSON(), nullable=False),
        sa.Column("sizes", sa.JSON(), nullable=False),
        sa.Column("reports", sa.String(200), nullable=False),
        sa.Column("providers", sa.JSON(), nullable=True),
        sa.Column("upstream", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    state = op.create_table(
        "catalog_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "price_plans",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("ratio", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("price_plan", sa.String(64), nullable=True))
        batch.create_foreign_key("fk_accounts_price_plan", "price_plans", ["price_plan"], ["name"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("reported_model", sa.String(200), nullable=True))
    op.bulk_insert(
        models,
        [
            {
                "name": "ideogram-v4",
                "title": "Ideogram V4",
                "active": True,
                "prices": {"TURBO": 16, "BALANCED": 28, "QUALITY": 44},
                "sizes": ["1:1", "3:4", "9:16", "4:3", "16:9"],
                "reports": SEED_REPORTS,
                "providers": None,
                "upstream": {},
                "queue": "model:ideogram-v4",
                "created_at": 0.0,
                "updated_at": 0.0,
            }
        ],
    )
    op.bulk_insert(state, [{"id": 1, "version": 1}])
    # Tasks from before have no reported_model (no rewrite of a large table here): they were all
    # the seed's, and tasks/presenter.py shows the seed's for them.


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("reported_model")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint("fk_accounts_price_plan", type_="foreignkey")
        batch.drop_column("price_plan")
    op.drop_table("price_plans")
    op.drop_table("catalog_state")
    op.drop_table("models")
