"""Failed password checks, for the log-in throttle's sliding window

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(
        "ix_login_failures_account_key_created_at",
        "login_failures",
        ["account_key", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_login_failures_ip_created_at", "login_failures", ["ip", "created_at"], unique=False
    )
    op.create_index(
        op.f("ix_login_failures_created_at"), "login_failures", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_created_at"), table_name="login_failures")
    op.drop_index("ix_login_failures_ip_created_at", table_name="login_failures")
    op.drop_index("ix_login_failures_account_key_created_at", table_name="login_failures")
    op.drop_table("login_failures")
