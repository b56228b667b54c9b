"""Usage periods keep the plan they are billed with; usage alerts; monthly spending caps

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None

SNAPSHOT: list[tuple[str, sa.types.TypeEngine[Any], str]] = [
    ("plan_code", sa.String(length=32), "code"),
    ("plan_name", sa.String(length=100), "name"),
    ("plan_price_ht_cents", sa.Integer(), "price_ht_cents"),
    ("plan_included_cpu_hours", sa.Numeric(10, 2), "included_cpu_hours"),
    ("plan_overage_cpu_hour_eur", sa.Numeric(12, 6), "overage_cpu_hour_eur"),
    ("plan_overage_ram_gb_hour_eur", sa.Numeric(12, 6), "overage_ram_gb_hour_eur"),
    ("plan_overage_job_minute_eur", sa.Numeric(12, 6), "overage_job_minute_eur"),
]


def upgrade() -> None:
    for column, kind, _ in SNAPSHOT:
        op.add_column("usage_periods", sa.Column(column, kind, nullable=True))
    # Months opened before this revision get the account's plan as it is now: the plan they
    # were priced with was not recorded.
    assignments = ", ".join(f"{column} = plans.{source}" for column, _, source in SNAPSHOT)
    op.execute(
        f"UPDATE usage_periods SET {assignments} FROM tenants JOIN plans "  # noqa: S608 - constants
        "ON plans.id = tenants.plan_id WHERE tenants.id = usage_periods.tenant_id"
    )
    for column, _, _ in SNAPSHOT:
        op.alter_column("usage_periods", column, nullable=False)
    columns = ", ".join(column for column, _, _ in SNAPSHOT)
    # A month is billed with the plan it opened with, whatever the account changes to later.
    op.execute(
        f"""
        CREATE FUNCTION usage_periods_plan_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF ROW({", ".join(f"NEW.{c}" for c, _, _ in SNAPSHOT)})
               IS DISTINCT FROM ROW({", ".join(f"OLD.{c}" for c, _, _ in SNAPSHOT)}) THEN
                RAISE EXCEPTION 'the plan of usage period % of tenant % is fixed',
                    OLD.period, OLD.tenant_id;
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        f"CREATE TRIGGER usage_periods_plan_fixed BEFORE UPDATE OF {columns} ON usage_periods "
        "FOR EACH ROW EXECUTE FUNCTION usage_periods_plan_fixed()"
    )
    op.create_table(
        "usage_alerts",
        sa.Column("tenant_id", sa.String(length=8), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("allowance", sa.String(length=16), nullable=False),
        sa.Column("threshold_percent", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "period", "allowance", "threshold_percent"),
    )
    op.create_table(
        "usage_spending_caps",
        sa.Column(
            "tenant_id",
            sa.String(length=8),
            sa.ForeignKey("tenants.id"),
            primary_key=True,
            nullable=False,
        ),
        sa.Column("cap_eur_ht", sa.Numeric(12, 2), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("cap_eur_ht >= 0", name="cap_eur_ht"),
    )


def downgrade() -> None:
    op.drop_table("usage_spending_caps")
    op.drop_table("usage_alerts")
    op.execute("DROP TRIGGER IF EXISTS usage_periods_plan_fixed ON usage_periods")
    op.execute("DROP FUNCTION IF EXISTS usage_periods_plan_fixed()")
    for column, _, _ in reversed(SNAPSHOT):
        op.drop_column("usage_periods", column)
