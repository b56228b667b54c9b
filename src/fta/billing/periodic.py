"""The worker's periodic billing round: cheap, idempotent, safe to run from several workers."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from fta.billing import access, metering
from fta.billing.payment_invoices import invoice_payments
from fta.billing.paypal import paypal_from_settings
from fta.billing.usage_bills import bill_closed_months
from fta.billing.usage_collection import send_usage_bills, track_usage_bills
from fta.plans import service as plans
from fta.settings import get_settings

log = logging.getLogger(__name__)


def run_round(session: Session, now: datetime) -> None:
    """Ends expired trials and graces, applies deferred plan changes, meters bot runs,
    closes past months whose grace window is over, invoices what PayPal collected, and
    bills closed months' overage (sent through PayPal when it is configured)."""
    for tenant_id in access.advance_billing_states(session, now):
        log.info("account %s suspended: trial or payment grace over", tenant_id)
    plans.apply_pending_plans(session, now)
    metering.meter_bot_runs(session, now)
    grace = timedelta(hours=get_settings().usage_close_grace_hours)
    for period in metering.close_due_periods(session, now, grace):
        log.info("usage period %s closed", period)
    for number in invoice_payments(session, now):
        log.info("issued %s for a PayPal payment", number)
    for number in bill_closed_months(session, now):
        log.info("issued %s for a closed month's overage", number)
    paypal = paypal_from_settings()
    if paypal.client.configured:
        send_usage_bills(session, paypal, now)
        track_usage_bills(session, paypal, now)
