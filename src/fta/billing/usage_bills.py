"""Billing a closed month's overage: our invoice for it (`fta.billing.usage_collection`
then collects it through PayPal).

Run by the worker's billing round, after months close. Each (tenant, month) gets one
`usage_bills` row, in the transaction that issues its invoice (its primary key makes a
second worker's attempt fail): a month without overage is recorded at zero and never looked
at again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.accounts.models import Tenant
from fta.billing.access import BillingStatus
from fta.billing.invoices.identity import client_from_tenant
from fta.billing.invoices.money import Line
from fta.billing.invoices.service import issue_invoice
from fta.billing.metering import usage_summary
from fta.billing.models import UsageBill, UsagePeriod
from fta.billing.periods import period_end, period_start
from fta.errors import Invalid

log = logging.getLogger(__name__)

HUNDRED = Decimal(100)


def bill_closed_months(session: Session, now: datetime) -> list[str]:
    """Issues an invoice for every closed month with overage not billed yet (trial months
    excepted: the trial's allowance is all it gets); returns the numbers issued."""
    due = session.execute(
        select(UsagePeriod.tenant_id, UsagePeriod.period)
        .outerjoin(
            UsageBill,
            (UsageBill.tenant_id == UsagePeriod.tenant_id)
            & (UsageBill.period == UsagePeriod.period),
        )
        .where(UsagePeriod.closed_at.is_not(None), UsageBill.tenant_id.is_(None))
        .order_by(UsagePeriod.period, UsagePeriod.tenant_id)
    ).all()
    issued = []
    for tenant_id, period in due:
        try:
            with session.begin_nested():
                number = _bill(session, session.get_one(Tenant, tenant_id), period, now)
        except Invalid as error:
            log.warning("usage of %s for %s not billed yet: %s", tenant_id, period, error)
            continue
        if number:
            issued.append(number)
    return issued


def _bill(session: Session, tenant: Tenant, period: str, now: datetime) -> str | None:
    summary = usage_summary(session, tenant, period, now)
    amount = summary.overage.amount_eur
    if amount <= 0 or tenant.billing_status == BillingStatus.TRIALING:
        session.add(UsageBill(tenant_id=tenant.id, period=period, amount_ht_cents=0))
        return None
    over = summary.overage
    line = Line(
        description=(
            f"Consommation au-delà du forfait {summary.plan.name}, {period} : "
            f"{over.cpu_hours:.2f} h CPU, {over.ram_gb_hours:.2f} Go·h de RAM, "
            f"{over.job_minutes:.0f} min de tâches"
        ),
        quantity=Decimal(1),
        unit_price_ht=amount,
    )
    invoice = issue_invoice(
        session,
        tenant_id=tenant.id,
        lines=[line],
        period=(period_start(period).date(), period_end(period).date()),
        client=client_from_tenant(tenant),
    )
    session.add(
        UsageBill(
            tenant_id=tenant.id,
            period=period,
            amount_ht_cents=int(amount * HUNDRED),
            invoice_id=invoice.id,
        )
    )
    return invoice.number
