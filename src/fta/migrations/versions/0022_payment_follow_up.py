"""Payment follow-up: when each unpaid usage bill was last asked about, the end of the period
a cancelled subscription paid for, and payment issues (pending or denied sales, disputes)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "usage_bills", sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_usage_bills_unpaid_checked",
        "usage_bills",
        ["last_checked_at"],
        postgresql_where=sa.text("sent_at IS NOT NULL AND paid_at IS NULL"),
    )
    op.add_column(
        "subscriptions", sa.Column("paid_through", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "payment_issues",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("paypal_id", sa.String(length=64), nullable=False),
        sa.Column("sale_id", sa.String(length=64), nullable=True),
        sa.Column("paypal_subscription_id", sa.String(length=64), nullable=True),
        sa.Column("tenant_id", sa.String(length=8), sa.ForeignKey("tenants.id"), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("kind", "paypal_id"),
    )
    op.create_index("ix_payment_issues_tenant_id", "payment_issues", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("payment_issues")
    op.drop_column("subscriptions", "paid_through")
    op.drop_index("ix_usage_bills_unpaid_checked", table_name="usage_bills")
    op.drop_column("usage_bills", "last_checked_at")
