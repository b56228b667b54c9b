"""Each worker's heartbeat, with whether the Docker engine and the gateway answered it

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("docker_ok", sa.Boolean(), nullable=False),
        sa.Column("docker_error", sa.String(300), nullable=True),
        sa.Column("containers", sa.Integer(), nullable=True),
        sa.Column("jobs_in_flight", sa.Integer(), nullable=False),
        sa.Column("gateway_ok", sa.Boolean(), nullable=False),
        sa.Column("gateway_error", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
