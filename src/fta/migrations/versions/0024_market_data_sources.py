"""Candles kept apart by data source; the operator's recorded ranges; each job's source

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The cache's files move to a directory per source: what was held before is fetched again
    # there, from the source of the mode that runs.
    op.execute("DELETE FROM candle_cache")
    op.add_column("candle_cache", sa.Column("source", sa.String(length=16), nullable=False))
    op.drop_constraint("pk_candle_cache", "candle_cache", type_="primary")
    op.create_primary_key(
        "pk_candle_cache", "candle_cache", ["source", "exchange", "pair", "timeframe"]
    )
    op.create_table(
        "recorded_candles",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("pair", sa.String(length=32), nullable=False),
        sa.Column("timeframe", sa.String(length=8), nullable=False),
        sa.Column("first_open", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_open", sa.DateTime(timezone=True), nullable=False),
        sa.Column("candles", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "pair", "timeframe", name=op.f("pk_recorded_candles")),
    )
    op.add_column("jobs", sa.Column("market_data_source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "market_data_source")
    op.drop_table("recorded_candles")
    op.execute("DELETE FROM candle_cache")
    op.drop_constraint("pk_candle_cache", "candle_cache", type_="primary")
    op.drop_column("candle_cache", "source")
    op.create_primary_key("pk_candle_cache", "candle_cache", ["exchange", "pair", "timeframe"])
