"""When each pair of the candle cache was filled, to tell rows of a former cache volume

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows of before are left without a time: the worker cannot tell which volume they were
    # filled into, so it forgets them and their pairs are filled once more.
    op.add_column("candle_cache", sa.Column("filled_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("candle_cache", "filled_at")
