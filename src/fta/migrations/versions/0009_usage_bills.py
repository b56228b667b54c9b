"""A closed month's overage: its invoice and the PayPal invoice that collects it

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_bills",
        sa.Column("tenant_id", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("amount_ht_cents", sa.BigInteger(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=True),
        sa.Column("paypal_invoice_id", sa.String(length=64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_ht_cents >= 0", name=op.f("ck_usage_bills_amount_ht_cents")),
        sa.CheckConstraint(
            "(amount_ht_cents = 0) = (invoice_id IS NULL)", name=op.f("ck_usage_bills_invoiced")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_usage_bills_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_usage_bills_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "period", name=op.f("pk_usage_bills")),
    )


def downgrade() -> None:
    op.drop_table("usage_bills")
