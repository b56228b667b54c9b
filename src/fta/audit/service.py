"""Appending to and verifying the hash-chained audit log.

Each event's hash covers its content and the previous event's hash, so editing,
deleting or reordering a row breaks every later link of that chain. The database
also refuses UPDATE and DELETE on the table (see the migration's trigger).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fta.audit.models import PLATFORM_CHAIN, AuditChainHead, AuditEvent
from fta.db import utcnow

GENESIS = "0" * 64


def _digest(prev_hash: str, seq: int, created_at: datetime, fields: dict[str, str | None]) -> str:
    payload = json.dumps(
        {"prev": prev_hash, "seq": seq, "at": created_at.astimezone(UTC).isoformat(), **fields},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _fields(event: AuditEvent) -> dict[str, str | None]:
    return {
        "actor": event.actor,
        "tenant": event.tenant_id,
        "action": event.action,
        "target": event.target,
        "ip": event.ip,
    }


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    tenant_id: str | None = None,
    target: str | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Appends one event to the tenant's chain (the platform's when no tenant)."""
    chain = tenant_id or PLATFORM_CHAIN
    session.execute(
        insert(AuditChainHead)
        .values(chain=chain, seq=0, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=["chain"])
    )
    head = session.scalars(
        select(AuditChainHead).where(AuditChainHead.chain == chain).with_for_update()
    ).one()
    event = AuditEvent(
        chain=chain,
        seq=head.seq + 1,
        created_at=utcnow(),
        actor=actor,
        tenant_id=tenant_id,
        action=action,
        target=target,
        ip=ip,
        prev_hash=head.hash,
    )
    event.hash = _digest(event.prev_hash, event.seq, event.created_at, _fields(event))
    head.seq, head.hash = event.seq, event.hash
    session.add(event)
    session.flush()
    return event


def verify_chain(session: Session, chain: str) -> int | None:
    """Returns the sequence number of the first broken link, or None if intact."""
    expected_prev, expected_seq = GENESIS, 1
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    )
    for event in events:
        if event.seq != expected_seq or event.prev_hash != expected_prev:
            return expected_seq
        if _digest(event.prev_hash, event.seq, event.created_at, _fields(event)) != event.hash:
            return event.seq
        expected_prev, expected_seq = event.hash, event.seq + 1
    head = session.get(AuditChainHead, chain)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != expected_prev):
        return expected_seq
    return None
