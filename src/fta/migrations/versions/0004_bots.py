"""Dry-run bots, their logs and their trade snapshots

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bots",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("strategy_version_id", sa.Uuid(), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("desired_state", sa.String(length=16), nullable=False),
        sa.Column("actual_state", sa.String(length=16), nullable=False),
        sa.Column("restart_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("container_id", sa.String(length=64), nullable=True),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("restart_backoff_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_log_lines", sa.Text(), nullable=True),
        sa.Column("status", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "desired_state IN ('running', 'stopped')", name=op.f("ck_bots_desired_state")
        ),
        sa.CheckConstraint(
            "actual_state IN ('stopped', 'pending', 'starting', 'running', 'stopping', 'crashed')",
            name=op.f("ck_bots_actual_state"),
        ),
        sa.ForeignKeyConstraint(
            ["strategy_version_id"],
            ["strategy_versions.id"],
            name=op.f("fk_bots_strategy_version_id_strategy_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_bots_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bots")),
    )
    op.create_index(op.f("ix_bots_tenant_id"), "bots", ["tenant_id"], unique=False)
    op.create_index("ix_bots_states", "bots", ["desired_state", "actual_state"], unique=False)
    op.create_index(
        "uq_bots_tenant_name_live",
        "bots",
        ["tenant_id", "name"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "bot_logs",
        sa.Column("bot_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_bot_logs_bot_id_bots")),
        sa.PrimaryKeyConstraint("bot_id", "seq", name=op.f("pk_bot_logs")),
    )
    op.create_table(
        "bot_trades",
        sa.Column("bot_id", sa.Uuid(), nullable=False),
        sa.Column("trade_id", sa.Integer(), nullable=False),
        sa.Column("pair", sa.String(length=41), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("open_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("close_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("amount", sa.Numeric(precision=30, scale=12), nullable=False),
        sa.Column("stake_amount", sa.Numeric(precision=30, scale=12), nullable=False),
        sa.Column("open_rate", sa.Numeric(precision=30, scale=12), nullable=False),
        sa.Column("close_rate", sa.Numeric(precision=30, scale=12), nullable=True),
        sa.Column("profit_abs", sa.Numeric(precision=30, scale=12), nullable=True),
        sa.Column("profit_ratio", sa.Numeric(precision=20, scale=10), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bot_id"], ["bots.id"], name=op.f("fk_bot_trades_bot_id_bots")),
        sa.PrimaryKeyConstraint("bot_id", "trade_id", name=op.f("pk_bot_trades")),
    )


def downgrade() -> None:
    op.drop_table("bot_trades")
    op.drop_table("bot_logs")
    op.drop_index(
        "uq_bots_tenant_name_live",
        table_name="bots",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_index("ix_bots_states", table_name="bots")
    op.drop_index(op.f("ix_bots_tenant_id"), table_name="bots")
    op.drop_table("bots")
