"""Sign-ups per client address, for the sign-up throttle

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signup_attempts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_attempts")),
    )
    op.create_index(
        "ix_signup_attempts_ip_created_at", "signup_attempts", ["ip", "created_at"], unique=False
    )
    op.create_index(
        op.f("ix_signup_attempts_created_at"), "signup_attempts", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_signup_attempts_created_at"), table_name="signup_attempts")
    op.drop_index("ix_signup_attempts_ip_created_at", table_name="signup_attempts")
    op.drop_table("signup_attempts")
