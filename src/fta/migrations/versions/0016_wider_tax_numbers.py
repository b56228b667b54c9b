"""Tax numbers of clients outside the EU as long as the invoices print them (40 characters)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column(
        "tenants", "vat_number", type_=sa.String(length=40), existing_type=sa.String(length=16)
    )


def downgrade() -> None:
    # Numbers longer than the old column are cut: they could not have been stored before.
    op.execute("UPDATE tenants SET vat_number = left(vat_number, 16)")
    op.alter_column(
        "tenants", "vat_number", type_=sa.String(length=16), existing_type=sa.String(length=40)
    )
