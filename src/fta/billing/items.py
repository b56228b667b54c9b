"""Working through the billing round's items one transaction each, so that one bad item
never stops the others.

An item that cannot be done yet for a reason a person can act on (`Invalid`: the client's
billing identity is incomplete, the seller's is not configured) waits for a later round and
shows as an alert. Any other failure quarantines the item: a blocking alert records why, the
item is left out of later rounds until an operator resolves the alert, and the round goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from fta.billing.alerts.service import quarantined_keys, raise_alert, settle
from fta.errors import DomainError, Invalid

log = logging.getLogger(__name__)

# A unit of work: a session whose transaction commits when the block ends without error.
UnitOfWork = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Item:
    key: str  # the alert key, e.g. 'payment:42'
    tenant_id: str | None


ItemT = TypeVar("ItemT", bound=Item)


class Mismatch(DomainError):
    """What PayPal reports does not agree with what we sold: no document is made, an
    operator must look."""

    title = "Billing mismatch"


def waiting(items: Iterable[ItemT], session: Session, prefix: str) -> list[ItemT]:
    """The items not in quarantine."""
    held = quarantined_keys(session, prefix)
    return [item for item in items if item.key not in held]


def process_items(
    unit: UnitOfWork,
    items: Iterable[ItemT],
    work: Callable[[Session, ItemT], str | None],
    now: datetime,
) -> list[str]:
    """Runs `work` on each item in a transaction of its own; returns what the items that
    succeeded returned (document numbers), skipping None."""
    done = []
    for item in items:
        try:
            with unit() as session:
                result = work(session, item)
                settle(session, item.key, now)
        except Invalid as error:
            log.warning("%s waits: %s", item.key, error.detail)
            _alert(unit, item, "billing-item-waiting", error.detail, now, blocking=False)
            continue
        except Exception as error:
            log.exception("%s quarantined", item.key)
            detail = error.detail if isinstance(error, DomainError) else repr(error)
            kind = "billing-mismatch" if isinstance(error, Mismatch) else "billing-item-failed"
            _alert(unit, item, kind, detail, now, blocking=True)
            continue
        if result is not None:
            done.append(result)
    return done


def _alert(
    unit: UnitOfWork, item: Item, kind: str, message: str, now: datetime, *, blocking: bool
) -> None:
    with unit() as session:
        raise_alert(
            session,
            key=item.key,
            kind=kind,
            message=message,
            now=now,
            tenant_id=item.tenant_id,
            blocking=blocking,
        )
