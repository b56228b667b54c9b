"""Plan prices, quotas and overage rates; tenants' billing state; usage events and periods

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BILLING_STATUSES = "'trialing', 'active', 'past_due', 'suspended', 'cancelled'"
# Prices HT in cents; rates in EUR HT per CPU-hour, RAM GB-hour and job-minute.
SEED = {
    "starter": {
        "price_ht_cents": 1900,
        "included_cpu_hours": Decimal("20"),
        "overage_cpu_hour_eur": Decimal("0.05"),
        "overage_ram_gb_hour_eur": Decimal("0.01"),
        "overage_job_minute_eur": Decimal("0.002"),
    },
    "pro": {
        "price_ht_cents": 7900,
        "included_cpu_hours": Decimal("120"),
        "overage_cpu_hour_eur": Decimal("0.04"),
        "overage_ram_gb_hour_eur": Decimal("0.008"),
        "overage_job_minute_eur": Decimal("0.0015"),
    },
}


def upgrade() -> None:
    _plans()
    _tenants()
    _usage()


def _plans() -> None:
    op.add_column(
        "plans", sa.Column("price_ht_cents", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "plans",
        sa.Column("included_cpu_hours", sa.Numeric(10, 2), server_default="0", nullable=False),
    )
    for column in ("overage_cpu_hour_eur", "overage_ram_gb_hour_eur", "overage_job_minute_eur"):
        op.add_column(
            "plans", sa.Column(column, sa.Numeric(12, 6), server_default="0", nullable=False)
        )
    op.add_column(
        "plans", sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
    )
    for name, check in {
        "price_ht_cents": "price_ht_cents >= 0",
        "included_cpu_hours": "included_cpu_hours >= 0",
        "overage_rates": "overage_cpu_hour_eur >= 0 AND overage_ram_gb_hour_eur >= 0 "
        "AND overage_job_minute_eur >= 0",
        "default_active": "NOT is_default OR active",
    }.items():
        op.create_check_constraint(op.f(f"ck_plans_{name}"), "plans", check)
    plans = sa.table(
        "plans",
        sa.column("code", sa.String),
        *(sa.column(column, sa.Numeric) for column in SEED["starter"]),
    )
    for code, values in SEED.items():
        op.execute(plans.update().where(plans.c.code == code).values(**values))


def _tenants() -> None:
    op.add_column("tenants", sa.Column("trial_ends_at", sa.DateTime(timezone=True)))
    op.add_column(
        "tenants",
        sa.Column(
            "billing_status", sa.String(length=16), server_default="trialing", nullable=False
        ),
    )
    op.add_column("tenants", sa.Column("grace_until", sa.DateTime(timezone=True)))
    # A plan change of a paying client waits for the next usage period (see docs/billing.md).
    op.add_column(
        "tenants",
        sa.Column(
            "pending_plan_id",
            sa.Integer(),
            sa.ForeignKey("plans.id", name=op.f("fk_tenants_pending_plan_id_plans")),
        ),
    )
    op.add_column("tenants", sa.Column("pending_plan_period", sa.String(length=7)))
    # Who the invoices are made out to.
    op.add_column(
        "tenants",
        sa.Column("customer_type", sa.String(length=16), server_default="private", nullable=False),
    )
    for column, length in (
        ("legal_name", 200),
        ("address_line1", 200),
        ("address_line2", 200),
        ("postcode", 16),
        ("city", 100),
        ("country", 2),
        ("siren", 9),
        ("vat_number", 16),
    ):
        op.add_column("tenants", sa.Column(column, sa.String(length=length)))
    op.create_check_constraint(
        op.f("ck_tenants_billing_status"), "tenants", f"billing_status IN ({BILLING_STATUSES})"
    )
    op.create_check_constraint(
        op.f("ck_tenants_customer_type"), "tenants", "customer_type IN ('private', 'business')"
    )
    op.create_check_constraint(op.f("ck_tenants_country"), "tenants", "country ~ '^[A-Z]{2}$'")
    op.create_check_constraint(op.f("ck_tenants_siren"), "tenants", "siren ~ '^[0-9]{9}$'")
    # Accounts that predate billing start a trial now rather than lose access at once.
    op.execute(
        "UPDATE tenants SET trial_ends_at = now() + interval '14 days' WHERE trial_ends_at IS NULL"
    )


def _usage() -> None:
    period_check = "period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'"
    op.create_table(
        "usage_periods",
        sa.Column("tenant_id", sa.String(length=8), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(period_check, name=op.f("ck_usage_periods_period")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_usage_periods_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "period", name=op.f("pk_usage_periods")),
    )
    op.create_table(
        "usage_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.String(length=8), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("subject_kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("cpu_seconds", sa.Numeric(14, 3), nullable=False),
        sa.Column("ram_gb_seconds", sa.Numeric(18, 3), nullable=False),
        sa.Column("running_seconds", sa.Numeric(14, 3), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.CheckConstraint(period_check, name=op.f("ck_usage_events_period")),
        sa.CheckConstraint(
            "subject_kind IN ('job', 'bot')", name=op.f("ck_usage_events_subject_kind")
        ),
        sa.CheckConstraint(
            "cpu_seconds >= 0 AND ram_gb_seconds >= 0 AND running_seconds >= 0",
            name=op.f("ck_usage_events_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_usage_events_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
        sa.UniqueConstraint("tenant_id", "event_key", name=op.f("uq_usage_events_tenant_id")),
    )
    op.create_index("ix_usage_events_tenant_period", "usage_events", ["tenant_id", "period"])
    # The ledger is append-only, and a closed period takes no new event.
    op.execute(
        """
        CREATE FUNCTION usage_events_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP <> 'INSERT' THEN
                RAISE EXCEPTION 'usage_events is append-only';
            END IF;
            IF EXISTS (SELECT 1 FROM usage_periods p WHERE p.tenant_id = NEW.tenant_id
                       AND p.period = NEW.period AND p.closed_at IS NOT NULL) THEN
                RAISE EXCEPTION 'usage period % of tenant % is closed', NEW.period, NEW.tenant_id;
            END IF;
            RETURN NEW;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER usage_events_guard BEFORE INSERT OR UPDATE OR DELETE ON usage_events "
        "FOR EACH ROW EXECUTE FUNCTION usage_events_guard()"
    )
    op.execute(
        """
        CREATE FUNCTION usage_periods_stay_closed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' AND OLD.closed_at IS NOT NULL THEN
                RAISE EXCEPTION 'usage period % of tenant % is closed', OLD.period, OLD.tenant_id;
            END IF;
            IF TG_OP = 'UPDATE' AND OLD.closed_at IS NOT NULL
               AND NEW.closed_at IS DISTINCT FROM OLD.closed_at THEN
                RAISE EXCEPTION 'usage period % of tenant % is closed', OLD.period, OLD.tenant_id;
            END IF;
            RETURN COALESCE(NEW, OLD);
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER usage_periods_stay_closed BEFORE UPDATE OR DELETE ON usage_periods "
        "FOR EACH ROW EXECUTE FUNCTION usage_periods_stay_closed()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS usage_periods_stay_closed ON usage_periods")
    op.execute("DROP FUNCTION IF EXISTS usage_periods_stay_closed()")
    op.execute("DROP TRIGGER IF EXISTS usage_events_guard ON usage_events")
    op.execute("DROP FUNCTION IF EXISTS usage_events_guard()")
    op.drop_index("ix_usage_events_tenant_period", table_name="usage_events")
    op.drop_table("usage_events")
    op.drop_table("usage_periods")
    for name in ("billing_status", "customer_type", "country", "siren"):
        op.drop_constraint(op.f(f"ck_tenants_{name}"), "tenants", type_="check")
    for column in (
        "vat_number",
        "siren",
        "country",
        "city",
        "postcode",
        "address_line2",
        "address_line1",
        "legal_name",
        "customer_type",
        "pending_plan_period",
        "pending_plan_id",
        "grace_until",
        "billing_status",
        "trial_ends_at",
    ):
        op.drop_column("tenants", column)
    for name in ("price_ht_cents", "included_cpu_hours", "overage_rates", "default_active"):
        op.drop_constraint(op.f(f"ck_plans_{name}"), "plans", type_="check")
    for column in (
        "active",
        "overage_job_minute_eur",
        "overage_ram_gb_hour_eur",
        "overage_cpu_hour_eur",
        "included_cpu_hours",
        "price_ht_cents",
    ):
        op.drop_column("plans", column)
