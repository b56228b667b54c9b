"""The PayPal webhook endpoint against the stand-in: deliveries whose certificate or time is
not PayPal's are refused and audited and leave nothing else, and the endpoint answers 429 with
Retry-After past its rates without losing a genuine delivery (PayPal retries it)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from fta.audit.models import AuditEvent
from fta.billing.alerts.models import BillingAlert
from fta.billing.api import get_paypal, webhook_limits
from fta.billing.paypal import PayPal
from fta.billing.paypal.models import Payment, PayPalEvent, Subscription
from fta.billing.paypal.webhooks import DeliveryLimits
from fta.db import session_scope
from tests.support.paypal_standin import PayPalStandin

PROBLEM = "application/problem+json"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def standin() -> Iterator[PayPalStandin]:
    with PayPalStandin() as standin:
        yield standin


@pytest.fixture(scope="module")
def paypal(app_settings: None, standin: PayPalStandin) -> PayPal:
    return standin.facade()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limits(clock: Clock) -> DeliveryLimits:
    return DeliveryLimits(per_address_per_minute=3, per_minute=5, clock=clock)


@pytest.fixture
def api(app_settings: None, paypal: PayPal, limits: DeliveryLimits) -> Iterator[TestClient]:
    from fta.portal.app import create_app

    app = create_app()
    app.dependency_overrides[get_paypal] = lambda: paypal
    app.dependency_overrides[webhook_limits] = lambda: limits
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def counts() -> dict[str, int]:
    """Rows a webhook delivery could leave."""
    with session_scope() as session:
        refusals = select(func.count()).where(AuditEvent.action == "billing.webhook_refused")
        return {
            "refusals": session.scalar(refusals.select_from(AuditEvent)) or 0,
            "audit": session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
            "events": session.scalar(select(func.count()).select_from(PayPalEvent)) or 0,
            "subscriptions": session.scalar(select(func.count()).select_from(Subscription)) or 0,
            "payments": session.scalar(select(func.count()).select_from(Payment)) or 0,
            "alerts": session.scalar(select(func.count()).select_from(BillingAlert)) or 0,
        }


def recorded(event: dict[str, Any]) -> bool:
    with session_scope() as session:
        found = session.scalar(select(PayPalEvent.id).where(PayPalEvent.event_id == event["id"]))
    return found is not None


def send(
    api: TestClient, standin: PayPalStandin, event: dict[str, Any], ip: str, **signing: Any
) -> Any:
    """Delivers `event` as from `ip` (nginx's X-Real-IP, which the portal trusts)."""
    body = json.dumps(event).encode()
    headers = {**standin.signed_headers(body, **signing), "X-Real-IP": ip}
    return api.post("/webhooks/paypal", content=body, headers=headers)


def an_event(standin: PayPalStandin) -> dict[str, Any]:
    return standin.event("BILLING.SUBSCRIPTION.CANCELLED", {"id": "I-NOBODYS"})


def now_minus(**delta: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(**delta)


@pytest.mark.parametrize(
    ("signing", "reason"),
    [
        ({"signer": "misnamed"}, "PayPal's name"),
        ({"signer": "untrusted"}, "trusted root"),
        ({"sent_at_ago": dt.timedelta(days=5)}, "older than"),
        ({"sent_at_ago": dt.timedelta(minutes=-10)}, "in the future"),
        ({"cert_url": "https://api.paypal.com.evil.test/v1/notifications/certs/CERT-1"}, "URL"),
    ],
    ids=["another-name", "untrusted-chain", "stale", "future", "foreign-host"],
)
def test_a_refused_delivery_is_audited_and_leaves_nothing_else(
    api: TestClient, standin: PayPalStandin, signing: dict[str, Any], reason: str
) -> None:
    event = an_event(standin)
    before = counts()
    # Times are taken now, not when the cases were collected: a suite runs for many minutes.
    if "sent_at_ago" in signing:
        signing = {"sent_at": dt.datetime.now(dt.UTC) - signing["sent_at_ago"]}
    answer = send(api, standin, event, "192.0.2.10", **signing)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert reason in answer.json()["detail"]
    assert not recorded(event)
    after = counts()
    assert after["refusals"] == before["refusals"] + 1
    assert after["audit"] == before["audit"] + 1
    assert {k: v for k, v in after.items() if k not in ("refusals", "audit")} == {
        k: v for k, v in before.items() if k not in ("refusals", "audit")
    }


def test_a_genuine_retry_with_its_original_time_is_accepted(
    api: TestClient, standin: PayPalStandin
) -> None:
    event = an_event(standin)
    answer = send(api, standin, event, "192.0.2.11", sent_at=now_minus(days=2))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "unknown_subscription"
    assert recorded(event)


def test_one_address_over_its_rate_gets_429_and_paypal_still_gets_through(
    api: TestClient, standin: PayPalStandin, clock: Clock
) -> None:
    flood = [send(api, standin, an_event(standin), "198.51.100.7") for _ in range(4)]
    assert [a.status_code for a in flood] == [200, 200, 200, 429]
    refused = flood[-1]
    assert refused.headers["content-type"] == PROBLEM
    assert refused.headers["Retry-After"] == "20"

    before = counts()
    more = send(api, standin, an_event(standin), "198.51.100.7")
    assert more.status_code == 429
    # Not verified nor audited: a flood costs no database work.
    assert counts() == before

    # PayPal, from its own address, is not held up by that flood.
    event = an_event(standin)
    assert send(api, standin, event, "192.0.2.20").status_code == 200
    assert recorded(event)
    clock.now += 20
    assert send(api, standin, an_event(standin), "198.51.100.7").status_code == 200


def test_the_total_rate_answers_429_tells_the_operator_and_paypal_retries(
    api: TestClient, standin: PayPalStandin, clock: Clock
) -> None:
    for i in range(5):
        assert send(api, standin, an_event(standin), f"203.0.113.{i + 1}").status_code == 200
    before = counts()
    event = an_event(standin)
    refused = send(api, standin, event, "192.0.2.30")
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == "12"
    assert "global" in refused.json()["detail"]
    assert not recorded(event)
    with session_scope() as session:
        alert = session.scalars(
            select(BillingAlert).where(
                BillingAlert.key == "paypal-webhook-rate", BillingAlert.resolved_at.is_(None)
            )
        ).one()
        assert "FTA_PAYPAL_WEBHOOK_PER_MINUTE" in alert.message
        occurrences = alert.occurrences
    assert counts()["alerts"] == before["alerts"] + (1 if occurrences == 1 else 0)
    assert counts()["refusals"] == before["refusals"]

    # More refusals within the minute do not touch the alert again.
    assert send(api, standin, an_event(standin), "192.0.2.31").status_code == 429
    with session_scope() as session:
        again = session.scalars(
            select(BillingAlert).where(
                BillingAlert.key == "paypal-webhook-rate", BillingAlert.resolved_at.is_(None)
            )
        ).one()
        assert again.occurrences == occurrences

    # PayPal retries the refused delivery later: it is recorded then.
    clock.now += 12
    retried = send(api, standin, event, "192.0.2.30")
    assert retried.status_code == 200, retried.text
    assert retried.json()["outcome"] == "unknown_subscription"
    assert recorded(event)
