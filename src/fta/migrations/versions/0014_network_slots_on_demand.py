"""Network slots taken on a tenant's first run and freed when unused, not at sign-up

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Slots already held stay held; the worker frees them once their tenants are idle.
    op.alter_column("tenants", "subnet_index", server_default=None, nullable=True)
    op.execute("DROP SEQUENCE tenant_subnet_index_seq")
    op.add_column("tenants", sa.Column("network_used_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("tenants", "network_used_at")
    op.execute("CREATE SEQUENCE tenant_subnet_index_seq MINVALUE 0 START 0")
    # Tenants without a slot get fresh ones above every slot held, as before.
    op.execute(
        "SELECT setval('tenant_subnet_index_seq', max(subnet_index) + 1, false) FROM tenants "
        "HAVING max(subnet_index) IS NOT NULL"
    )
    op.execute(
        "UPDATE tenants SET subnet_index = nextval('tenant_subnet_index_seq') "
        "WHERE subnet_index IS NULL"
    )
    op.alter_column(
        "tenants",
        "subnet_index",
        server_default=sa.text("nextval('tenant_subnet_index_seq')"),
        nullable=False,
    )
