"""The operator's view of an audit chain: whether it holds, where it breaks, and its latest
events, each marked with whether its own link holds."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta import audit
from fta.audit.models import PLATFORM_CHAIN, AuditEvent

SHOWN = 200


@dataclass(frozen=True)
class ShownEvent:
    event: AuditEvent
    # Where the chain breaks first: this event, an event missing before it, or its link.
    breaks_here: bool
    after_the_break: bool


@dataclass(frozen=True)
class ChainView:
    name: str
    platform: bool
    length: int
    broken_at: int | None
    events: list[ShownEvent]  # the latest SHOWN, newest first

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def chain_view(session: Session, chain: str) -> ChainView | None:
    """The chain named `chain` (the platform's, or an account's id); None if it has no event
    and no head."""
    if chain not in audit.service.chain_names(session):
        return None
    broken_at = audit.service.verify_chain(session, chain)
    latest = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq.desc())
        .limit(SHOWN)
    ).all()
    length = latest[0].seq if latest else 0
    shown = [
        ShownEvent(
            event,
            breaks_here=broken_at is not None and event.seq == broken_at,
            after_the_break=broken_at is not None and event.seq > broken_at,
        )
        for event in latest
    ]
    return ChainView(chain, chain == PLATFORM_CHAIN, length, broken_at, shown)


def broken_chains(session: Session) -> list[tuple[str, int]]:
    """Every chain that does not hold, with where it breaks first."""
    found = []
    for name in audit.service.chain_names(session):
        at = audit.service.verify_chain(session, name)
        if at is not None:
            found.append((name, at))
    return found
