"""A running bot's address on its tenant network, where the portal's relay reaches its API

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Running bots get theirs at the worker's next round.
    op.add_column("bots", sa.Column("api_address", sa.String(length=15), nullable=True))


def downgrade() -> None:
    op.drop_column("bots", "api_address")
