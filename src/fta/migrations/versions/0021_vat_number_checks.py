"""EU VAT numbers checked against VIES: each tenant's number status, and the date and
consultation number of the check that verified it

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("vat_number_status", sa.String(length=16), nullable=True))
    op.add_column(
        "tenants", sa.Column("vat_number_checked_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("tenants", sa.Column("vat_number_check_ref", sa.String(length=64), nullable=True))
    # Numbers saved before VIES checks existed are checked again by the billing round.
    op.execute(
        "UPDATE tenants SET vat_number_status = 'unverified' WHERE customer_type = 'business' "
        "AND vat_number IS NOT NULL AND country IN ('AT', 'BE', 'BG', 'CY', 'CZ', 'DE', 'DK', "
        "'EE', 'ES', 'FI', 'GR', 'HR', 'HU', 'IE', 'IT', 'LT', 'LU', 'LV', 'MT', 'NL', 'PL', "
        "'PT', 'RO', 'SE', 'SI', 'SK')"
    )


def downgrade() -> None:
    op.drop_column("tenants", "vat_number_check_ref")
    op.drop_column("tenants", "vat_number_checked_at")
    op.drop_column("tenants", "vat_number_status")
