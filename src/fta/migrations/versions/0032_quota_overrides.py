"""An operator's temporary quotas for an account, with a reason and an end

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quota_overrides",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("tenant_id", sa.String(8), nullable=False),
        sa.Column("cpu", sa.Numeric(4, 2), nullable=True),
        sa.Column("memory_mb", sa.Integer(), nullable=True),
        sa.Column("pids", sa.Integer(), nullable=True),
        sa.Column("max_concurrent_jobs", sa.Integer(), nullable=True),
        sa.Column("max_queued_jobs", sa.Integer(), nullable=True),
        sa.Column("max_bots", sa.Integer(), nullable=True),
        sa.Column("max_job_seconds", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "ends_at > created_at", name=op.f("ck_quota_overrides_ends_after_it_starts")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_quota_overrides_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_overrides")),
    )
    op.create_index(
        "uq_quota_overrides_tenant_id_in_force",
        "quota_overrides",
        ["tenant_id"],
        unique=True,
        postgresql_where=sa.text("ended_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_quota_overrides_tenant_id_in_force", table_name="quota_overrides")
    op.drop_table("quota_overrides")
