"""How full each account's data disk is, and whether the worker could measure the disks

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenant_disk_usage",
        sa.Column("tenant_id", sa.String(8), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_disk_usage_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_disk_usage")),
    )
    op.add_column(
        "worker_heartbeats",
        sa.Column("disks_measured_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("worker_heartbeats", sa.Column("disks_error", sa.String(300), nullable=True))


def downgrade() -> None:
    op.drop_column("worker_heartbeats", "disks_error")
    op.drop_column("worker_heartbeats", "disks_measured_at")
    op.drop_table("tenant_disk_usage")
