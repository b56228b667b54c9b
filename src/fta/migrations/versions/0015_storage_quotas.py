"""Plans bound what a tenant stores: strategy versions and their bytes, job logs and result
files (kept for a number of days, and within a byte quota); uploads of strategy versions per
tenant for their throttle; when a job's output was pruned

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

MIB = 1024 * 1024
# Column, server default (a new plan's value), check.
PLAN_COLUMNS = (
    ("max_strategy_versions", 500, "max_strategy_versions BETWEEN 1 AND 100000"),
    ("max_strategy_bytes", 32 * MIB, f"max_strategy_bytes BETWEEN {MIB} AND {16 * 1024 * MIB}"),
    ("job_output_retention_days", 30, "job_output_retention_days BETWEEN 1 AND 3650"),
    (
        "max_job_output_bytes",
        1024 * MIB,
        f"max_job_output_bytes BETWEEN {16 * MIB} AND {1024 * 1024 * MIB}",
    ),
)
SEEDED = {
    "starter": {
        "max_strategy_versions": 500,
        "max_strategy_bytes": 32 * MIB,
        "job_output_retention_days": 30,
        "max_job_output_bytes": 1024 * MIB,
    },
    "pro": {
        "max_strategy_versions": 2000,
        "max_strategy_bytes": 128 * MIB,
        "job_output_retention_days": 90,
        "max_job_output_bytes": 5 * 1024 * MIB,
    },
}


def upgrade() -> None:
    for column, default, check in PLAN_COLUMNS:
        op.add_column(
            "plans",
            sa.Column(column, sa.BigInteger(), server_default=str(default), nullable=False),
        )
        op.create_check_constraint(op.f(f"ck_plans_{column}"), "plans", check)
    plans = sa.table(
        "plans",
        sa.column("code", sa.String),
        *(sa.column(column, sa.BigInteger) for column, _, _ in PLAN_COLUMNS),
    )
    for code, values in SEEDED.items():
        op.execute(plans.update().where(plans.c.code == code).values(**values))
    op.add_column("jobs", sa.Column("output_pruned_at", sa.DateTime(timezone=True)))
    op.create_table(
        "strategy_uploads",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_strategy_uploads_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_uploads")),
    )
    op.create_index(
        "ix_strategy_uploads_tenant_id_created_at",
        "strategy_uploads",
        ["tenant_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_strategy_uploads_tenant_id_created_at", table_name="strategy_uploads")
    op.drop_table("strategy_uploads")
    op.drop_column("jobs", "output_pruned_at")
    for column, _, _ in reversed(PLAN_COLUMNS):
        op.drop_constraint(op.f(f"ck_plans_{column}"), "plans", type_="check")
        op.drop_column("plans", column)
