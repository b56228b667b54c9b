"""An operator's suspension of an account, with the reason its client sees

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("suspension_reason", sa.String(500), nullable=True))
    op.add_column("tenants", sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f("ck_tenants_suspension_reason"),
        "tenants",
        "suspension_reason IS NULL OR (suspended_at IS NOT NULL AND length(suspension_reason) > 0)",
    )


def downgrade() -> None:
    op.drop_constraint("ck_tenants_suspension_reason", "tenants", type_="check")
    op.drop_column("tenants", "suspended_at")
    op.drop_column("tenants", "suspension_reason")
