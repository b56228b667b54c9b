"""PayPal subscriptions: our catalog as PayPal products and plans, starting a subscription,
the buyer's return, and webhook events.

A subscription's status is never taken from an event: each event only says "look again", and
the subscription is re-fetched from PayPal and its current status applied. Deliveries in any
order, any number of times, therefore end in the same state.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fta.access.plan_changes import change_plan
from fta.accounts.models import CLOSED, BillingStatus, Tenant
from fta.audit import service as audit
from fta.billing import payment_issues
from fta.billing.account_states import apply_billing_state, has_overdue_usage_bill
from fta.billing.invoices.identity import check_client, client_from_tenant
from fta.billing.invoices.vat import FRENCH_RATE, ZERO_RATE, treatment
from fta.billing.paypal import PayPal
from fta.billing.paypal.client import PayPalClient, PayPalError
from fta.billing.paypal.models import (
    EventOutcome,
    Payment,
    PaymentIssue,
    PaymentIssueKind,
    PaymentKind,
    PayPalCatalogEntry,
    PayPalEvent,
    Subscription,
    SubscriptionStatus,
)
from fta.billing.paypal.payments import MalformedResource, record_payment, sale_subscription_id
from fta.billing.paypal.webhooks import WebhookRefused
from fta.billing.vat_controls import check_payer_country
from fta.db import utcnow
from fta.errors import Conflict, DomainError, Invalid, NotFound
from fta.plans.models import Plan

log = logging.getLogger(__name__)

CURRENCY = "EUR"
SUBSCRIPTION_EVENTS = frozenset(
    {
        "BILLING.SUBSCRIPTION.CREATED",
        "BILLING.SUBSCRIPTION.ACTIVATED",
        "BILLING.SUBSCRIPTION.UPDATED",
        "BILLING.SUBSCRIPTION.RE-ACTIVATED",
        "BILLING.SUBSCRIPTION.SUSPENDED",
        "BILLING.SUBSCRIPTION.CANCELLED",
        "BILLING.SUBSCRIPTION.EXPIRED",
        "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
    }
)
PAYMENT_EVENTS = {
    "PAYMENT.SALE.COMPLETED": PaymentKind.SALE,
    "PAYMENT.SALE.REFUNDED": PaymentKind.REFUND,
    "PAYMENT.SALE.REVERSED": PaymentKind.REVERSAL,
}
# A subscription sale PayPal holds, or refused: the sale's state.
SALE_ISSUE_EVENTS = {"PAYMENT.SALE.PENDING": "pending", "PAYMENT.SALE.DENIED": "denied"}
DISPUTE_EVENTS = frozenset(
    {"CUSTOMER.DISPUTE.CREATED", "CUSTOMER.DISPUTE.UPDATED", "CUSTOMER.DISPUTE.RESOLVED"}
)
# When a tenant holds several subscriptions (a plan change, an abandoned approval), the best
# status speaks for the tenant.
_RANK = {
    SubscriptionStatus.ACTIVE: 3,
    SubscriptionStatus.PAST_DUE: 2,
    SubscriptionStatus.PENDING: 1,
    SubscriptionStatus.CANCELLED: 0,
}


class WebhookRejected(DomainError):
    title = "Webhook refused"


@dataclass(frozen=True)
class WebhookResult:
    outcome: str
    event_id: str | None = None
    refused: str | None = None  # why the delivery was refused, if it was


# --- the subscription state machine ---


def status_from_paypal(state: Mapping[str, Any]) -> SubscriptionStatus:
    """Our status for a subscription as PayPal shows it now."""
    paypal_status = state.get("status")
    if paypal_status == "ACTIVE":
        billing = state.get("billing_info")
        failed = billing.get("failed_payments_count", 0) if isinstance(billing, dict) else 0
        # PayPal resets the count after a successful payment.
        return SubscriptionStatus.PAST_DUE if failed else SubscriptionStatus.ACTIVE
    if paypal_status == "SUSPENDED":
        return SubscriptionStatus.PAST_DUE
    if paypal_status in ("CANCELLED", "EXPIRED"):
        return SubscriptionStatus.CANCELLED
    return SubscriptionStatus.PENDING  # APPROVAL_PENDING, APPROVED


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def one_cycle_after(moment: datetime) -> datetime:
    """The same time a month later (our plans bill monthly), on the month's last day when
    it is shorter."""
    # Months counted from year 0: moment.month is the next month's index from 0.
    year, month_index = divmod(moment.year * 12 + moment.month, 12)
    month = month_index + 1
    return moment.replace(
        year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1])
    )


def paid_through(state: Mapping[str, Any], last_sale: datetime | None) -> datetime | None:
    """When the period last paid for ends: PayPal's next billing time while no payment
    failed, else its last payment (or our last sale, whichever is later) plus one cycle."""
    billing = state.get("billing_info")
    billing = billing if isinstance(billing, dict) else {}
    ends = []
    if not billing.get("failed_payments_count"):
        ends.append(_time(billing.get("next_billing_time")))
    last_payment = billing.get("last_payment")
    paid = [last_sale, _time(last_payment.get("time")) if isinstance(last_payment, dict) else None]
    ends += [one_cycle_after(moment) for moment in paid if moment is not None]
    return max((end for end in ends if end is not None), default=None)


def _last_sale(session: Session, subscription: Subscription) -> datetime | None:
    return session.scalar(
        select(Payment.occurred_at)
        .where(
            Payment.kind == PaymentKind.SALE,
            Payment.paypal_subscription_id == subscription.paypal_subscription_id,
        )
        .order_by(Payment.occurred_at.desc())
        .limit(1)
    )


def _denied_sale_unpaid(session: Session, tenant_id: str) -> bool:
    """A subscription sale PayPal denied, with no sale of that subscription completed since."""
    later_sale = exists().where(
        Payment.kind == PaymentKind.SALE,
        Payment.paypal_subscription_id == PaymentIssue.paypal_subscription_id,
        Payment.occurred_at > PaymentIssue.occurred_at,
    )
    return (
        session.scalar(
            select(PaymentIssue.id)
            .where(
                PaymentIssue.tenant_id == tenant_id,
                PaymentIssue.kind == PaymentIssueKind.SALE,
                PaymentIssue.status == "denied",
                ~later_sale,
            )
            .limit(1)
        )
        is not None
    )


def account_status(session: Session, tenant: Tenant, now: datetime) -> BillingStatus | None:
    """What the account's billing status should be now (None: nothing decides it). Its best
    subscription speaks, a cancelled one as active until the period paid ends; an account
    that would be active is past due while a sale PayPal denied stays unpaid or a usage
    invoice is overdue. Without a live subscription, an account in a payment grace (or
    suspended after one) owes nothing else once those are paid."""
    subscriptions = session.scalars(
        select(Subscription).where(Subscription.tenant_id == tenant.id)
    ).all()
    statuses = [
        SubscriptionStatus.ACTIVE
        if s.status == SubscriptionStatus.CANCELLED
        and s.paid_through is not None
        and s.paid_through > now
        else SubscriptionStatus(s.status)
        for s in subscriptions
    ]
    best = max(statuses, key=_RANK.__getitem__, default=None)
    if best is None or best is SubscriptionStatus.PENDING:
        after_grace = tenant.billing_status == BillingStatus.PAST_DUE or (
            tenant.billing_status == BillingStatus.SUSPENDED and tenant.grace_until is not None
        )
        if not after_grace:
            return None
        best = SubscriptionStatus.ACTIVE
    if best is SubscriptionStatus.ACTIVE and (
        _denied_sale_unpaid(session, tenant.id) or has_overdue_usage_bill(session, tenant.id, now)
    ):
        return BillingStatus.PAST_DUE
    return BillingStatus(best.value)


def settle_account(session: Session, tenant_id: str, now: datetime) -> None:
    """Applies `account_status` to the account (after a payment, or a usage invoice paid)."""
    tenant = session.get_one(Tenant, tenant_id)
    status = account_status(session, tenant, now)
    if status is not None:
        apply_billing_state(session, tenant, status, now)


def list_subscriptions(session: Session, tenant_id: str) -> list[Subscription]:
    """The account's subscriptions, newest first."""
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.tenant_id == tenant_id)
            .order_by(Subscription.created_at.desc())
        )
    )


def next_billing_time(subscription: Subscription) -> datetime | None:
    """When PayPal bills the subscription next, as it last showed it (None: not known)."""
    state = subscription.last_state if isinstance(subscription.last_state, dict) else {}
    billing = state.get("billing_info")
    if subscription.status != SubscriptionStatus.ACTIVE or not isinstance(billing, dict):
        return None
    return _time(billing.get("next_billing_time"))


def tenant_billing_status(session: Session, tenant_id: str) -> SubscriptionStatus | None:
    statuses = session.scalars(
        select(Subscription.status).where(Subscription.tenant_id == tenant_id)
    ).all()
    if not statuses:
        return None
    return max((SubscriptionStatus(s) for s in statuses), key=_RANK.__getitem__)


def _apply_to_tenant(
    session: Session, subscription: Subscription, became_active: bool, now: datetime
) -> None:
    """The tenant's access follows `account_status`; a newly active subscription puts the
    tenant on its plan (at once, or from the next period for an account already paying)."""
    tenant = session.get_one(Tenant, subscription.tenant_id)
    if tenant.status in CLOSED:
        return  # a deleted account takes no plan and keeps its billing state
    if became_active:
        plan = session.scalars(select(Plan).where(Plan.code == subscription.plan_code)).first()
        if (
            plan is not None
            and plan.active
            and plan.id not in (tenant.plan_id, tenant.pending_plan_id)
        ):
            change_plan(session, tenant, plan, now)
    settle_account(session, tenant.id, now)


def refresh_subscription(
    session: Session, client: PayPalClient, subscription: Subscription, now: datetime
) -> Subscription:
    """Re-fetches the subscription (its row locked) and applies PayPal's current status."""
    session.refresh(subscription, with_for_update=True)
    state = client.get_subscription(subscription.paypal_subscription_id)
    if state.get("id") != subscription.paypal_subscription_id:
        raise PayPalError("PayPal answered with another subscription", 502)
    if status_from_paypal(state) in LIVE and _account_closed(session, subscription.tenant_id):
        state = _cancel_at_paypal(session, client, subscription)
    was_active = subscription.status == SubscriptionStatus.ACTIVE
    subscription.paypal_status = str(state.get("status", ""))[:32]
    subscription.status = status_from_paypal(state)
    subscription.last_state = state
    check_payer_country(session, subscription.tenant_id, state, now)
    subscription.paid_through = (
        paid_through(state, _last_sale(session, subscription))
        if subscription.status == SubscriptionStatus.CANCELLED
        else None
    )
    subscription.updated_at = now
    session.flush()
    became_active = subscription.status == SubscriptionStatus.ACTIVE and not was_active
    _apply_to_tenant(session, subscription, became_active, now)
    return subscription


# A subscription PayPal still bills: cancelled when its account is deleted.
LIVE = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE})
CLOSED_ACCOUNT_REASON = "The client deleted their account."


def _account_closed(session: Session, tenant_id: str) -> bool:
    return session.scalar(select(Tenant.status).where(Tenant.id == tenant_id)) in CLOSED


def _cancel_at_paypal(
    session: Session, client: PayPalClient, subscription: Subscription
) -> dict[str, Any]:
    """Cancels the subscription of a deleted account at PayPal; PayPal's state after it."""
    client.cancel_subscription(subscription.paypal_subscription_id, reason=CLOSED_ACCOUNT_REASON)
    audit.record(
        session,
        actor="billing",
        action="billing.subscription_cancelled",
        tenant_id=subscription.tenant_id,
        target=subscription.paypal_subscription_id,
    )
    state = client.get_subscription(subscription.paypal_subscription_id)
    if state.get("id") != subscription.paypal_subscription_id:
        raise PayPalError("PayPal answered with another subscription", 502)
    return state


def cancel_subscriptions(session: Session, paypal: PayPal, tenant_id: str, now: datetime) -> int:
    """Looks again at every subscription of a deleted account that is not cancelled: a live
    one is cancelled at PayPal (`refresh_subscription`). Returns how many are still live (0
    once PayPal bills the account no more); one awaiting the buyer's approval is cancelled
    if it is ever approved."""
    if not _account_closed(session, tenant_id):
        raise Conflict(f"account {tenant_id} is not being deleted")
    live = 0
    for subscription in session.scalars(
        select(Subscription)
        .where(
            Subscription.tenant_id == tenant_id,
            Subscription.status != SubscriptionStatus.CANCELLED,
        )
        .order_by(Subscription.created_at)
    ).all():
        refreshed = refresh_subscription(session, paypal.client, subscription, now)
        live += SubscriptionStatus(refreshed.status) in LIVE
    return live


# --- catalog ---

# PayPal tells current subscribers of a new price by e-mail and charges it from their first
# cycle at least this long after the change.
PRICE_NOTICE = timedelta(days=10)


def sync_catalog(session: Session, client: PayPalClient) -> list[PayPalCatalogEntry]:
    """Makes every paid, active plan a PayPal product with two PayPal plans at its current
    price: one adding French VAT, one adding none (reverse charge, clients outside the EU).

    Idempotent: an entry whose plan PayPal still has at that price is left alone; a changed
    price is set on the PayPal plan itself, so that current subscribers pay it too, from a
    later cycle (`reprice_subscriptions`); an entry PayPal no longer knows (another
    environment) is made again. Request ids are derived from the plan, price and VAT, so a
    sync cut short and run again creates nothing twice.
    """
    plans = session.scalars(
        select(Plan).where(Plan.active.is_(True), Plan.price_ht_cents > 0).order_by(Plan.code)
    ).all()
    return [
        _sync_plan(session, client, plan, tax) for plan in plans for tax in (FRENCH_RATE, ZERO_RATE)
    ]


def _sync_plan(
    session: Session, client: PayPalClient, plan: Plan, tax_percent: Decimal
) -> PayPalCatalogEntry:
    entry = session.get(PayPalCatalogEntry, (plan.code, tax_percent), with_for_update=True)
    stale = entry is None or not _paypal_has_plan(client, entry.paypal_plan_id)
    if entry is not None and not stale and entry.price_cents == plan.price_ht_cents:
        return entry
    tax_tag = "vat" if tax_percent else "novat"
    if entry is not None and not stale:
        client.update_plan_price(
            entry.paypal_plan_id,
            price=Decimal(plan.price_ht_cents) / 100,
            currency=CURRENCY,
            request_id=f"fta-price-{entry.paypal_plan_id}-{plan.price_ht_cents}",
        )
        entry.price_cents, entry.synced_at = plan.price_ht_cents, utcnow()
        reprice_subscriptions(session, plan.code, tax_percent, plan.price_ht_cents, utcnow())
        session.flush()
        return entry
    product_id = _product_id(session, client, plan, entry if not stale else None)
    created = client.create_plan(
        product_id=product_id,
        name=f"fta {plan.name} monthly" + ("" if tax_percent else " (VAT not charged)"),
        price=Decimal(plan.price_ht_cents) / 100,
        currency=CURRENCY,
        tax_percent=tax_percent,
        request_id=f"fta-plan-{plan.code}-{plan.price_ht_cents}-{tax_tag}-{product_id}",
    )
    if entry is None:
        entry = PayPalCatalogEntry(plan_code=plan.code, tax_percent=tax_percent)
        session.add(entry)
    entry.product_id, entry.paypal_plan_id = product_id, str(created["id"])
    entry.price_cents, entry.currency, entry.synced_at = plan.price_ht_cents, CURRENCY, utcnow()
    session.flush()
    return entry


def _product_id(
    session: Session, client: PayPalClient, plan: Plan, entry: PayPalCatalogEntry | None
) -> str:
    """The plan's PayPal product: the entry's, a sibling entry's still known to PayPal, or a
    new one (its request id is the same for the same plan and PayPal environment)."""
    if entry is not None:
        return entry.product_id
    siblings = session.scalars(
        select(PayPalCatalogEntry).where(PayPalCatalogEntry.plan_code == plan.code)
    ).all()
    for sibling in siblings:
        if _paypal_has_plan(client, sibling.paypal_plan_id):
            return sibling.product_id
    environment = hashlib.sha256(client.base_url.encode()).hexdigest()[:16]
    product = client.create_product(
        name=f"fta {plan.name}",
        description=f"Hosted Freqtrade, plan {plan.name}",
        request_id=f"fta-product-{plan.code}-{environment}",
    )
    return str(product["id"])


def reprice_subscriptions(
    session: Session, plan_code: str, tax_percent: Decimal, price_cents: int, now: datetime
) -> None:
    """Records the plan's new price on its current subscriptions at this VAT, as the next
    price PayPal will charge them: from their first cycle ten days after `now` or later."""
    for subscription in session.scalars(
        select(Subscription).where(
            Subscription.plan_code == plan_code,
            Subscription.tax_percent == tax_percent,
            Subscription.status != SubscriptionStatus.CANCELLED,
        )
    ):
        if subscription.price_ht_cents == price_cents:
            subscription.next_price_ht_cents = subscription.next_price_from = None
        else:
            subscription.next_price_ht_cents = price_cents
            subscription.next_price_from = now + PRICE_NOTICE


def _paypal_has_plan(client: PayPalClient, paypal_plan_id: str) -> bool:
    try:
        client.get_plan(paypal_plan_id)
    except PayPalError as error:
        if error.http_status == 404:
            return False
        raise
    return True


# --- starting a subscription and the buyer's return ---


def start_subscription(session: Session, paypal: PayPal, tenant_id: str, plan_code: str) -> str:
    """Creates the tenant's subscription to `plan_code`; returns the URL where the buyer
    approves it on PayPal."""
    plan = session.scalars(select(Plan).where(Plan.code == plan_code)).first()
    if plan is None or not plan.active:
        raise NotFound(f"no plan {plan_code!r}: GET /api/v1/plans lists the plans on offer")
    if plan.price_ht_cents <= 0:
        raise Conflict(f"plan {plan_code!r} is free: there is nothing to subscribe to")
    current = session.scalars(
        select(Subscription).where(
            Subscription.tenant_id == tenant_id,
            Subscription.plan_code == plan_code,
            Subscription.status.in_([SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE]),
        )
    ).first()
    if current is not None:
        raise Conflict(f"you already subscribe to plan {plan_code!r}")
    tax_percent = _tax_percent_for(session, tenant_id)
    entry = _sync_plan(session, paypal.client, plan, tax_percent)
    now = utcnow()
    created = paypal.client.create_subscription(
        plan_id=entry.paypal_plan_id,
        custom_id=tenant_id,
        return_url=paypal.return_url,
        cancel_url=paypal.cancel_url,
        request_id=f"fta-sub-{tenant_id}-{plan_code}-{int(now.timestamp())}",
    )
    approval = next(
        (link.get("href") for link in created.get("links", []) if link.get("rel") == "approve"),
        None,
    )
    if not isinstance(approval, str) or not approval.startswith("https://"):
        raise PayPalError("PayPal's answer holds no approval link", 502)
    session.add(
        Subscription(
            tenant_id=tenant_id,
            paypal_subscription_id=str(created["id"])[:64],
            plan_code=plan_code,
            price_ht_cents=entry.price_cents,
            tax_percent=entry.tax_percent,
            status=status_from_paypal(created),
            paypal_status=str(created.get("status", ""))[:32],
            last_state=created,
            created_at=now,
            updated_at=now,
        )
    )
    audit.record(
        session,
        actor=f"tenant:{tenant_id}",
        action="billing.subscription_started",
        tenant_id=tenant_id,
        target=str(created["id"])[:200],
    )
    session.flush()
    return approval


def _tax_percent_for(session: Session, tenant_id: str) -> Decimal:
    """The VAT PayPal must add for this client: it depends on who the client is, so the
    billing identity comes first."""
    try:
        client = check_client(client_from_tenant(session.get_one(Tenant, tenant_id)))
    except Invalid as error:
        raise Conflict(
            "complete your billing identity first (PUT /api/v1/billing/identity): the VAT "
            f"PayPal charges depends on it ({error.detail})"
        ) from None
    return treatment(client).rate


def confirm_return(
    session: Session,
    client: PayPalClient,
    paypal_subscription_id: str,
    tenant_id: str | None = None,
) -> Subscription:
    """The buyer is back from PayPal: look at the subscription again. Only a subscription we
    created (for `tenant_id`, when the caller is known) is looked up, so an unknown id costs
    no call to PayPal."""
    subscription = session.scalars(
        select(Subscription).where(Subscription.paypal_subscription_id == paypal_subscription_id)
    ).first()
    if subscription is None or tenant_id not in (None, subscription.tenant_id):
        raise NotFound(f"no subscription {paypal_subscription_id!r} was started here")
    return refresh_subscription(session, client, subscription, utcnow())


# --- webhooks ---


def receive_webhook(
    session: Session, paypal: PayPal, headers: Mapping[str, str], body: bytes, ip: str | None
) -> WebhookResult:
    """Verifies, records and processes one delivery. A refused delivery leaves an audit row
    and nothing else; the caller commits either way."""
    try:
        paypal.verifier.verify(headers, body)
    except WebhookRefused as refusal:
        audit.record(
            session,
            actor="paypal",
            action="billing.webhook_refused",
            target=refusal.reason[:200],
            ip=ip,
        )
        return WebhookResult("refused", refused=refusal.reason)
    event = _parse_event(body)
    event_id, event_type = event["id"], event["event_type"]
    resource = event["resource"]
    resource_id = resource.get("id") if isinstance(resource.get("id"), str) else None
    inserted = session.execute(
        insert(PayPalEvent)
        .values(
            event_id=event_id,
            event_type=event_type,
            resource_id=resource_id[:64] if resource_id else None,
            body=body,
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(PayPalEvent.id)
    ).scalar()
    if inserted is None:
        return WebhookResult("duplicate", event_id)
    try:
        outcome = _process(session, paypal.client, event_type, resource)
    except MalformedResource as problem:
        log.warning("PayPal event %s kept unprocessed: %s", event_id, problem)
        outcome = EventOutcome.MALFORMED
    stored = session.get_one(PayPalEvent, inserted)
    stored.processed_at, stored.outcome = utcnow(), outcome
    return WebhookResult(outcome, event_id)


def _parse_event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected("the webhook body is not JSON") from exc
    if not isinstance(event, dict):
        raise WebhookRejected("the webhook body is not a JSON object")
    for key in ("id", "event_type"):
        value = event.get(key)
        if not isinstance(value, str) or not 0 < len(value) <= 64:
            raise WebhookRejected(f"the webhook event has no valid {key!r}")
    if not isinstance(event.get("resource"), dict):
        raise WebhookRejected("the webhook event has no resource object")
    return event


def _process(
    session: Session, client: PayPalClient, event_type: str, resource: dict[str, Any]
) -> EventOutcome:
    if event_type in SUBSCRIPTION_EVENTS:
        subscription_id = resource.get("id")
    elif event_type in PAYMENT_EVENTS:
        kind = PAYMENT_EVENTS[event_type]
        record_payment(session, kind, resource)
        if kind is not PaymentKind.SALE:
            return EventOutcome.APPLIED  # a refund or reversal changes no subscription
        # A sale may end a past-due spell: look at its subscription again.
        subscription_id = sale_subscription_id(resource)
        payment_issues.sale_completed(session, str(resource["id"]))
    elif event_type in SALE_ISSUE_EVENTS:
        subscription_id = sale_subscription_id(resource)
    elif event_type in DISPUTE_EVENTS:
        payment_issues.record_dispute(session, event_type, resource, utcnow())
        return EventOutcome.APPLIED
    else:
        return EventOutcome.IGNORED
    if not isinstance(subscription_id, str):
        raise MalformedResource("the event names no subscription")
    subscription = session.scalars(
        select(Subscription).where(Subscription.paypal_subscription_id == subscription_id)
    ).first()
    if subscription is None:
        return EventOutcome.UNKNOWN_SUBSCRIPTION
    sale_state = SALE_ISSUE_EVENTS.get(event_type)
    if sale_state is not None:
        payment_issues.record_sale_issue(session, subscription, sale_state, resource)
        if sale_state == "pending":
            return EventOutcome.APPLIED  # PayPal has not decided: access is unchanged
    refresh_subscription(session, client, subscription, utcnow())
    return EventOutcome.APPLIED
