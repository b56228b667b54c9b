"""Raising, listing and resolving billing alerts. Every function works in the caller's
transaction."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fta.audit import service as audit
from fta.billing.alerts.models import BillingAlert
from fta.errors import Conflict, Invalid, NotFound

log = logging.getLogger(__name__)

MAX_MESSAGE = 2000
MAX_KEY = 200


def raise_alert(
    session: Session,
    *,
    key: str,
    kind: str,
    message: str,
    now: datetime,
    tenant_id: str | None = None,
    blocking: bool = False,
) -> BillingAlert:
    """Opens the alert about `key`, or counts one more occurrence of the open one (its
    message becomes the latest). A blocking alert quarantines `key` until resolved."""
    if not 0 < len(key) <= MAX_KEY:
        raise Invalid(f"an alert key holds 1 to {MAX_KEY} characters")
    message = message[:MAX_MESSAGE]
    row_id = session.execute(
        insert(BillingAlert)
        .values(
            key=key,
            kind=kind[:64],
            tenant_id=tenant_id,
            message=message,
            blocking=blocking,
            occurrences=1,
            first_seen_at=now,
            last_seen_at=now,
        )
        .on_conflict_do_update(
            index_elements=["key"],
            index_where=BillingAlert.resolved_at.is_(None),
            set_={
                "message": message,
                "last_seen_at": now,
                "occurrences": BillingAlert.occurrences + 1,
                "blocking": BillingAlert.blocking | blocking,
            },
        )
        .returning(BillingAlert.id)
    ).scalar_one()
    alert = session.get_one(BillingAlert, row_id, populate_existing=True)
    if alert.occurrences == 1:
        log.error("billing alert %s [%s] %s: %s", alert.id, kind, key, message)
    return alert


def is_quarantined(session: Session, key: str) -> bool:
    """Whether an open blocking alert keeps `key` out of the billing round."""
    return (
        session.scalar(
            select(BillingAlert.id).where(
                BillingAlert.key == key,
                BillingAlert.blocking.is_(True),
                BillingAlert.resolved_at.is_(None),
            )
        )
        is not None
    )


def quarantined_keys(session: Session, prefix: str) -> frozenset[str]:
    """The quarantined keys starting with `prefix` (one query for a whole list of items)."""
    return frozenset(
        session.scalars(
            select(BillingAlert.key).where(
                BillingAlert.key.startswith(prefix, autoescape=True),
                BillingAlert.blocking.is_(True),
                BillingAlert.resolved_at.is_(None),
            )
        )
    )


def settle(session: Session, key: str, now: datetime) -> None:
    """Closes the open non-blocking alert about `key`: its item went through after all."""
    alert = session.scalar(
        select(BillingAlert)
        .where(
            BillingAlert.key == key,
            BillingAlert.blocking.is_(False),
            BillingAlert.resolved_at.is_(None),
        )
        .with_for_update()
    )
    if alert is not None:
        alert.resolved_at, alert.resolved_by = now, "billing"
        alert.resolution = "done at a later billing round"


def open_alerts(session: Session, tenant_id: str | None = None) -> list[BillingAlert]:
    query = select(BillingAlert).where(BillingAlert.resolved_at.is_(None))
    if tenant_id is not None:
        query = query.where(BillingAlert.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(BillingAlert.first_seen_at, BillingAlert.id)))


def resolve(
    session: Session, alert_id: int, *, by: str, resolution: str, now: datetime
) -> BillingAlert:
    """Closes an alert with what was done about it; a quarantined item is tried again at
    the next billing round."""
    resolution = " ".join(resolution.split())
    if not 0 < len(resolution) <= MAX_MESSAGE:
        raise Invalid(f"say what was done, in 1 to {MAX_MESSAGE} characters")
    alert = session.get(BillingAlert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound(f"no billing alert {alert_id}")
    if alert.resolved_at is not None:
        raise Conflict(f"billing alert {alert_id} was already resolved on {alert.resolved_at}")
    alert.resolved_at, alert.resolved_by, alert.resolution = now, by[:100], resolution
    audit.record(
        session,
        actor=by,
        action="billing.alert_resolved",
        tenant_id=alert.tenant_id,
        target=f"{alert.id} {alert.key}"[:200],
    )
    return alert
