"""What each container run of a bot consumed: the bots' metering samples

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bot_runs",
        sa.Column("container_id", sa.String(length=64), nullable=False),
        sa.Column("bot_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sampled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cpu_seconds", sa.Numeric(precision=14, scale=3), nullable=False),
        sa.Column("memory_max_bytes", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("cpu_seconds >= 0", name=op.f("ck_bot_runs_cpu_seconds")),
        sa.CheckConstraint("memory_max_bytes >= 0", name=op.f("ck_bot_runs_memory_max_bytes")),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_bot_runs_bot_id_bots")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_bot_runs_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("container_id", name=op.f("pk_bot_runs")),
    )
    op.create_index(op.f("ix_bot_runs_bot_id"), "bot_runs", ["bot_id"])
    op.create_index(op.f("ix_bot_runs_tenant_id"), "bot_runs", ["tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_bot_runs_tenant_id"), table_name="bot_runs")
    op.drop_index(op.f("ix_bot_runs_bot_id"), table_name="bot_runs")
    op.drop_table("bot_runs")
