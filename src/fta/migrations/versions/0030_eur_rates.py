"""Euro rates of bots' stake currencies, read at the exchange by the worker

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eur_rates",
        sa.Column("currency", sa.String(20), nullable=False),
        sa.Column("eur_per_unit", sa.Numeric(38, 18), nullable=False),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("quoted_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("eur_per_unit > 0", name=op.f("ck_eur_rates_eur_per_unit")),
        sa.PrimaryKeyConstraint("currency", name=op.f("pk_eur_rates")),
    )


def downgrade() -> None:
    op.drop_table("eur_rates")
