"""/api/v1/billing (subscribing, the buyer's return from PayPal) and PayPal's webhook."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fta.accounts.deps import TenantDep
from fta.billing import subscriptions as service
from fta.billing.alerts.service import raise_alert
from fta.billing.paypal import PayPal, paypal_from_settings
from fta.billing.paypal.models import Subscription
from fta.billing.paypal.webhooks import DeliveryLimits
from fta.db import utcnow
from fta.settings import get_settings
from fta.web import problems
from fta.web.deps import ClientIpDep, SessionDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/billing", tags=["billing"])
# Not under /api/v1: PayPal's caller, not a client's.
webhook_router = APIRouter()

PLAN_CODE = r"^[a-z0-9][a-z0-9_-]{0,31}$"
PAYPAL_ID = r"^[A-Za-z0-9-]{1,64}$"


def get_paypal() -> PayPal:
    return paypal_from_settings()


PayPalDep = Annotated[PayPal, Depends(get_paypal)]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: str = Field(pattern=PLAN_CODE, description="the code of a paid plan")


class ApprovalOut(BaseModel):
    approval_url: str = Field(description="send the buyer there to approve on PayPal")


class SubscriptionOut(BaseModel):
    subscription_id: str = Field(description="PayPal's id of the subscription")
    plan: str
    status: str = Field(description="pending, active, past_due or cancelled")
    price_ht_cents: int | None = Field(description="each month's price before VAT, in cents")
    vat_percent: Decimal | None = Field(description="the VAT PayPal adds to it")
    next_price_ht_cents: int | None = Field(
        description="the plan's new price, charged from the first cycle on or after next_price_from"
    )
    next_price_from: datetime | None
    paid_through: datetime | None = Field(
        description="a cancelled subscription's end of the period paid: access lasts until then"
    )
    created_at: datetime
    updated_at: datetime


class BillingOut(BaseModel):
    status: str | None = Field(description="the best status among your subscriptions, if any")
    subscriptions: list[SubscriptionOut]


def _out(subscription: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        subscription_id=subscription.paypal_subscription_id,
        plan=subscription.plan_code,
        status=subscription.status,
        price_ht_cents=subscription.price_ht_cents,
        vat_percent=subscription.tax_percent,
        next_price_ht_cents=subscription.next_price_ht_cents,
        next_price_from=subscription.next_price_from,
        paid_through=subscription.paid_through,
        created_at=subscription.created_at,
        updated_at=subscription.updated_at,
    )


@router.post("/subscription", status_code=status.HTTP_201_CREATED)
def start_subscription(
    body: SubscriptionIn, session: SessionDep, tenant_id: TenantDep, paypal: PayPalDep
) -> ApprovalOut:
    """Subscribes to a plan: approve it at `approval_url`; PayPal then sends the buyer back
    to /api/v1/billing/return."""
    return ApprovalOut(
        approval_url=service.start_subscription(session, paypal, tenant_id, body.plan)
    )


@router.get("/subscription")
def get_subscriptions(session: SessionDep, tenant_id: TenantDep) -> BillingOut:
    rows = service.list_subscriptions(session, tenant_id)
    return BillingOut(
        status=service.tenant_billing_status(session, tenant_id),
        subscriptions=[_out(row) for row in rows],
    )


@router.get("/return")
def buyer_returns(
    session: SessionDep,
    paypal: PayPalDep,
    subscription_id: Annotated[str, Query(pattern=PAYPAL_ID)],
) -> SubscriptionOut:
    """Where PayPal sends the buyer after approval (no token: a browser redirect carries
    none). The subscription is looked at again on PayPal, so the caller decides nothing."""
    return _out(service.confirm_return(session, paypal.client, subscription_id))


@lru_cache(maxsize=1)
def webhook_limits() -> DeliveryLimits:
    settings = get_settings()
    return DeliveryLimits(
        per_address_per_minute=settings.paypal_webhook_per_address_per_minute,
        per_minute=settings.paypal_webhook_per_minute,
    )


@dataclass(frozen=True)
class Admission:
    wait_seconds: int  # 0: admitted
    limit: str  # which limit refused it, if one did


def _admission(
    ip: ClientIpDep, limits: Annotated[DeliveryLimits, Depends(webhook_limits)]
) -> Admission:
    return Admission(*limits.admit(ip))


AdmissionDep = Annotated[Admission, Depends(_admission)]


async def _raw_body(request: Request, admission: AdmissionDep) -> bytes:
    if admission.wait_seconds:
        return b""  # not read: the request is answered 429
    limit = get_settings().paypal_webhook_max_bytes
    too_large = service.WebhookRejected(f"webhook bodies are limited to {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _too_many(
    session: Session, limits: DeliveryLimits, admission: Admission, ip: str | None
) -> JSONResponse:
    """429 with Retry-After: PayPal retries a non-2xx delivery later, so nothing is lost, but
    a total limit reached may be delaying PayPal's own deliveries: the operator is told."""
    log.warning("PayPal webhook from %s over the %s rate: 429", ip, admission.limit)
    if admission.limit == "global" and limits.alert_due():
        raise_alert(
            session,
            key="paypal-webhook-rate",
            kind="paypal_webhook_rate_limited",
            message=(
                "The PayPal webhook endpoint reached its total rate "
                "(FTA_PAYPAL_WEBHOOK_PER_MINUTE) and answered 429: PayPal retries for 3 days, "
                "so check for a flood and raise the rate if PayPal's deliveries are delayed."
            ),
            now=utcnow(),
        )
    return problems.problem(
        429,
        "Too many requests",
        f"too many webhook requests ({admission.limit} rate); retry after "
        f"{admission.wait_seconds} seconds",
        headers={"Retry-After": str(admission.wait_seconds)},
    )


@webhook_router.post("/webhooks/paypal", include_in_schema=False)
def paypal_webhook(
    request: Request,
    admission: AdmissionDep,
    body: Annotated[bytes, Depends(_raw_body)],
    session: SessionDep,
    paypal: PayPalDep,
    ip: ClientIpDep,
    limits: Annotated[DeliveryLimits, Depends(webhook_limits)],
) -> JSONResponse:
    if admission.wait_seconds:
        return _too_many(session, limits, admission, ip)
    result = service.receive_webhook(session, paypal, request.headers, body, ip)
    if result.refused is not None:
        detail = f"the delivery is not verifiably PayPal's: {result.refused}"
        return problems.problem(400, "Webhook refused", detail)
    return problems.SafeJSONResponse({"outcome": result.outcome, "event_id": result.event_id})
