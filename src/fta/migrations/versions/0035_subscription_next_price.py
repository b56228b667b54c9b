"""A subscription's next price: an operator's new plan price, which PayPal charges from a
later cycle

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("next_price_ht_cents", sa.Integer(), nullable=True))
    op.add_column(
        "subscriptions",
        sa.Column("next_price_from", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("subscriptions", "next_price_from")
    op.drop_column("subscriptions", "next_price_ht_cents")
