"""The exchange's spot markets, for checking jobs' and bots' pairs in proxy mode

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_pairs",
        sa.Column("exchange", sa.String(32), nullable=False),
        sa.Column("pair", sa.String(48), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "pair", name=op.f("pk_market_pairs")),
    )


def downgrade() -> None:
    op.drop_table("market_pairs")
