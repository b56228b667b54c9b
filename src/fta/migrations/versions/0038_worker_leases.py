"""Workers' leases, renewed by their heartbeats, and which worker owns each active job and
each bot: several workers may run against one database

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_leases",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_leases")),
    )
    # Jobs and bots of a worker that stopped before this revision have no owner: the next
    # worker adopts them, as it adopted an earlier worker's before.
    op.add_column("jobs", sa.Column("worker_id", sa.String(24), nullable=True))
    op.add_column("bots", sa.Column("worker_id", sa.String(24), nullable=True))


def downgrade() -> None:
    op.drop_column("bots", "worker_id")
    op.drop_column("jobs", "worker_id")
    op.drop_table("worker_leases")
