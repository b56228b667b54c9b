"""Invoices handed to the Plateforme Agréée: one row per Factur-X document received

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_handoffs",
        sa.Column("invoice_id", sa.Uuid(), sa.ForeignKey("invoices.id"), primary_key=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("receipt", sa.String(length=300), nullable=False),
        sa.Column("handed_off_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("invoice_handoffs")
