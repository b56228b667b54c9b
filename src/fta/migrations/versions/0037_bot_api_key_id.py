"""Which secret key a bot's container was started with, so that FTA_SECRET_KEY rotates
without losing the way to running bots

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bots", sa.Column("api_key_id", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("bots", "api_key_id")
