"""The worker's periodic billing round: cheap, idempotent, safe to run from several workers.

Every step runs in a transaction of its own, and the steps that go through items (payments
to invoice, months to bill) give each item its own (`fta.billing.items`): a step or an item
that fails is reported to the operators as a billing alert, and the rest of the round goes
on. Ending trials and graces therefore never waits on an invoice that cannot be made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from fta.access import plan_changes
from fta.billing import account_states, metering
from fta.billing.alerts.service import raise_alert, settle
from fta.billing.invoices.handoff import hand_off_pending
from fta.billing.items import UnitOfWork
from fta.billing.payment_invoices import invoice_payments
from fta.billing.paypal import paypal_from_settings
from fta.billing.usage_bills import bill_closed_months
from fta.billing.usage_collection import send_usage_bills, track_usage_bills
from fta.billing.vat_controls import check_oss_threshold
from fta.billing.vies import recheck_unverified, vies_from_settings
from fta.settings import get_settings

log = logging.getLogger(__name__)

# One step of the round: it opens the transactions it needs.
Step = Callable[[], None]


def run_round(unit: UnitOfWork, now: datetime) -> None:
    """Ends expired trials and graces, applies deferred plan changes, meters bot runs,
    closes past months whose grace window is over, invoices what PayPal collected, bills
    closed months' overage (sent through PayPal when it is configured), and hands business
    documents to the Plateforme Agréée."""
    grace = timedelta(hours=get_settings().usage_close_grace_hours)
    paypal = paypal_from_settings()

    def transaction(work: Callable[[Session], object]) -> Step:
        def run() -> None:
            with unit() as session:
                work(session)

        return run

    steps: list[tuple[str, Step]] = [
        ("billing-states", transaction(lambda session: _advance_states(session, now))),
        (
            "pending-plans",
            transaction(lambda session: plan_changes.apply_pending_plans(session, now)),
        ),
        ("bot-metering", transaction(lambda session: metering.meter_bot_runs(session, now))),
        ("close-periods", transaction(lambda session: _close_periods(session, now, grace))),
        ("invoice-payments", lambda: _log_issued(invoice_payments(unit, now), "a payment")),
        ("bill-months", lambda: _log_issued(bill_closed_months(unit, now), "overage")),
        ("einvoice-handoff", transaction(lambda session: hand_off_pending(session, now))),
        ("oss-threshold", transaction(lambda session: check_oss_threshold(session, now))),
    ]
    if VIES_RECHECK.due():
        vies = vies_from_settings(get_settings())
        steps.append(
            ("vies-recheck", transaction(lambda session: recheck_unverified(session, vies, now)))
        )
    if paypal.client.configured:
        steps += [
            ("send-usage-bills", transaction(lambda s: send_usage_bills(s, paypal, now))),
            ("track-usage-bills", transaction(lambda s: track_usage_bills(s, paypal, now))),
        ]
    for name, step in steps:
        _run_step(unit, name, step, now)


class Cadence:
    """Says "due" at most once per `seconds` in this process: for steps that call out to
    others (VIES), which the round's own pace would call too often."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: float | None = None

    def due(self) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.seconds:
            return False
        self._last = now
        return True


# VIES is asked again about unverified VAT numbers at most hourly (from each worker).
VIES_RECHECK = Cadence(3600.0)


def _advance_states(session: Session, now: datetime) -> None:
    for tenant_id in account_states.advance_billing_states(session, now):
        log.info("account %s cut off: trial, grace or paid period over", tenant_id)


def _close_periods(session: Session, now: datetime, grace: timedelta) -> None:
    for period in metering.close_due_periods(session, now, grace):
        log.info("usage period %s closed", period)


def _log_issued(numbers: list[str], what: str) -> None:
    for number in numbers:
        log.info("issued %s for %s", number, what)


def _run_step(unit: UnitOfWork, name: str, step: Step, now: datetime) -> None:
    """Runs one step; a failure becomes an operator alert about the step (cleared once the
    step goes through again) and the round goes on."""
    key = f"round-step:{name}"
    try:
        step()
        with unit() as session:
            settle(session, key, now)
    except Exception as error:
        log.exception("billing round step %s failed", name)
        with unit() as session:
            raise_alert(session, key=key, kind="billing-step-failed", message=repr(error), now=now)
