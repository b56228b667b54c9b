"""Plans cap the jobs a tenant may have queued

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

QUEUED_JOBS = {"starter": 10, "pro": 25}


def upgrade() -> None:
    op.add_column(
        "plans", sa.Column("max_queued_jobs", sa.Integer(), server_default="10", nullable=False)
    )
    op.create_check_constraint(
        op.f("ck_plans_max_queued_jobs"), "plans", "max_queued_jobs BETWEEN 1 AND 1000"
    )
    plans = sa.table("plans", sa.column("code", sa.String), sa.column("max_queued_jobs"))
    for code, cap in QUEUED_JOBS.items():
        op.execute(plans.update().where(plans.c.code == code).values(max_queued_jobs=cap))


def downgrade() -> None:
    op.drop_constraint(op.f("ck_plans_max_queued_jobs"), "plans", type_="check")
    op.drop_column("plans", "max_queued_jobs")
