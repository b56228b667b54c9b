"""Billing a closed month's overage: our invoice for it (`fta.billing.usage_collection`
then collects it through PayPal).

Run by the worker's billing round, after months close, each month of each tenant in a
transaction of its own (`fta.billing.items`). Each (tenant, month) gets one `usage_bills`
row, in the transaction that issues its invoice: a month without overage is recorded at zero
and never looked at again. The invoice has one line per metered quantity, priced with the
plan and rates the month was opened with.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.access.models import UsagePeriod
from fta.access.periods import period_end, period_start
from fta.access.usage import UsageSummary, usage_summary
from fta.accounts.models import CLOSED, BillingStatus, Tenant
from fta.billing.invoices.identity import client_from_tenant
from fta.billing.invoices.money import MAX_SCALE, Line, decimal_fr
from fta.billing.invoices.service import issue_invoice
from fta.billing.items import Item, UnitOfWork, process_items, waiting
from fta.billing.models import UsageBill
from fta.billing.payment_issues import client_email

KEY_PREFIX = "usage-month:"
QUANTITY_PLACES = Decimal(1).scaleb(-MAX_SCALE)


@dataclass(frozen=True)
class DueMonth(Item):
    period: str


def bills_by_invoice(session: Session, tenant_id: str) -> dict[uuid.UUID, UsageBill]:
    """The tenant's usage bills that have an invoice, by invoice: whether PayPal sent and
    collected each."""
    rows = session.scalars(
        select(UsageBill).where(UsageBill.tenant_id == tenant_id, UsageBill.invoice_id.is_not(None))
    )
    return {row.invoice_id: row for row in rows if row.invoice_id is not None}


def months_due(session: Session) -> list[DueMonth]:
    """Closed months not billed yet and not in quarantine, oldest first."""
    rows = session.execute(
        select(UsagePeriod.tenant_id, UsagePeriod.period)
        .outerjoin(
            UsageBill,
            (UsageBill.tenant_id == UsagePeriod.tenant_id)
            & (UsageBill.period == UsagePeriod.period),
        )
        .where(UsagePeriod.closed_at.is_not(None), UsageBill.tenant_id.is_(None))
        .order_by(UsagePeriod.period, UsagePeriod.tenant_id)
    ).all()
    due = [DueMonth(f"{KEY_PREFIX}{tenant}:{period}", tenant, period) for tenant, period in rows]
    return waiting(due, session, KEY_PREFIX)


def bill_closed_months(unit: UnitOfWork, now: datetime) -> list[str]:
    """Issues an invoice for every closed month with overage not billed yet (trial months
    excepted: the trial's allowance is all it gets), each in its own transaction; returns
    the numbers issued."""
    with unit() as session:
        due = months_due(session)
    return process_items(unit, due, lambda session, item: bill_month(session, item, now), now)


def bill_month(session: Session, item: DueMonth, now: datetime) -> str | None:
    """Bills one closed month; None when it has no overage, or another worker has it."""
    tenant_id = str(item.tenant_id)
    held = session.scalar(
        select(UsagePeriod.period)
        .where(UsagePeriod.tenant_id == tenant_id, UsagePeriod.period == item.period)
        .with_for_update(skip_locked=True)
    )
    if held is None or session.get(UsageBill, (tenant_id, item.period)) is not None:
        return None
    tenant = session.get_one(Tenant, tenant_id)
    summary = usage_summary(session, tenant, item.period, now)
    lines = usage_lines(summary)
    # A deleted account's last months are not billed: nobody is left to bill (its invoices'
    # identities were snapshots, the account's own is erased).
    if not lines or tenant.billing_status == BillingStatus.TRIALING or tenant.status in CLOSED:
        session.add(UsageBill(tenant_id=tenant.id, period=item.period, amount_ht_cents=0))
        return None
    start = period_start(item.period).date()
    last_day = period_end(item.period).date() - timedelta(days=1)
    invoice = issue_invoice(
        session,
        tenant_id=tenant.id,
        lines=lines,
        period=(start, last_day),
        client=replace(client_from_tenant(tenant), email=client_email(session, tenant.id)),
    )
    session.add(
        UsageBill(
            tenant_id=tenant.id,
            period=item.period,
            amount_ht_cents=invoice.total_ht_cents,
            invoice_id=invoice.id,
        )
    )
    return invoice.number


def usage_lines(summary: UsageSummary) -> list[Line]:
    """One line per metered quantity billed beyond the plan: what was used, what the plan
    includes, and the quantity billed at its unit price. Quantities with nothing to bill get
    no line."""
    name, month, quantities = summary.plan.name, summary.period, summary.quantities
    cpu, ram, minutes = quantities.cpu_hours, quantities.ram_gb_hours, quantities.job_minutes
    candidates = [
        (
            f"Heures CPU au-delà du forfait {name}, {month} : {decimal_fr(_shown(cpu.used))} h "
            f"consommées, {decimal_fr(_shown(cpu.included))} h incluses",
            cpu,
            "h",
        ),
        (
            f"Mémoire (Go·h) au-delà du forfait {name}, {month} : "
            f"{decimal_fr(_shown(ram.used))} Go·h consommés, "
            f"{decimal_fr(_shown(ram.included))} Go·h inclus",
            ram,
            "Go·h",
        ),
        (
            f"Minutes de tâches au-delà du forfait {name}, {month} : "
            f"{decimal_fr(_shown(minutes.used))} min consommées, "
            f"{decimal_fr(_shown(minutes.included))} min incluses",
            minutes,
            "min",
        ),
    ]
    lines = []
    for description, quantity, unit in candidates:
        line = _priced(description, quantity.billable, quantity.unit_price_ht_eur, unit)
        if line is not None:
            lines.append(line)
    return lines


def _shown(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _priced(description: str, quantity: Decimal, rate: Decimal, unit: str) -> Line | None:
    """The line, or None if it bills less than half a cent. A rate finer than the 4
    decimals an invoice line's unit price holds is stated per 10, 100... units."""
    per = 1
    while rate.normalize().as_tuple().exponent < -MAX_SCALE:  # type: ignore[operator]
        rate, per = rate * 10, per * 10
    quantity = (quantity / per).quantize(QUANTITY_PLACES, ROUND_HALF_UP)
    if (quantity * rate).quantize(Decimal("0.01"), ROUND_HALF_UP) <= 0:
        return None
    if per > 1:
        description += f" — prix par {per} {unit}"
    return Line(description, quantity, rate.normalize())
