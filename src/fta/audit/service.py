"""Appending to and verifying the audit log's chains.

Each event's link is an HMAC-SHA256, under the audit key (FTA_AUDIT_KEY), of its content and
the previous event's link, so editing, deleting or reordering a row breaks that chain from
there on. The database never sees the key: whoever rewrites rows with database access alone
(the schema's owner disabling the append-only trigger, a superuser, an edited backup) cannot
forge the links again, and the verifier names the first broken one. The processes that hold
the key (portal, worker) log in as a role that may only append to the table.

Chains written before links were keyed hold plain SHA-256 links (`keyed` false). They are
accepted only as the start of a chain, followed by a keyed link, whose MAC covers them through
its previous link: `fta migrate` appends such a seal to every chain that ends unkeyed. A plain
link after a keyed one, or one no keyed link follows, is reported broken, so turning keyed
rows back into plain ones is seen too. Cutting a chain's tail together with its head is the
one rewrite a chain cannot show by itself: `fta audit-verify` prints every head, for keeping
outside the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from datetime import UTC

from sqlalchemy import and_, select, union
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fta.audit.models import PLATFORM_CHAIN, AuditChainHead, AuditEvent
from fta.db import utcnow
from fta.settings import get_settings

GENESIS = "0" * 64
SEAL_ACTION = "audit.chain_keyed"


def _link(key: bytes | None, event: AuditEvent) -> str:
    """The event's link: keyed when `key` is given, plain SHA-256 (rows from before keying)
    when not."""
    payload = json.dumps(
        {
            "prev": event.prev_hash,
            "seq": event.seq,
            "at": event.created_at.astimezone(UTC).isoformat(),
            "actor": event.actor,
            "tenant": event.tenant_id,
            "action": event.action,
            "target": event.target,
            "ip": event.ip,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    if key is None:
        return hashlib.sha256(payload).hexdigest()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()


def configured_key() -> bytes:
    return get_settings().audit_key.get_secret_value().encode()


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
    return append(
        session,
        configured_key(),
        actor=actor,
        action=action,
        tenant_id=tenant_id,
        target=target,
        ip=ip,
    )


def append(
    session: Session,
    key: bytes,
    *,
    actor: str,
    action: str,
    tenant_id: str | None = None,
    target: str | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Appends one event, linked under `key`, to the tenant's chain (the platform's when no
    tenant); the chain's head row, locked, serialises appends to one chain."""
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
        keyed=True,
    )
    event.hash = _link(key, event)
    head.seq, head.hash = event.seq, event.hash
    session.add(event)
    session.flush()
    return event


def first_broken_link(
    events: Iterable[AuditEvent], head: AuditChainHead | None, key: bytes
) -> int | None:
    """The sequence number of the first link that does not hold, or None if the chain is
    intact. A missing or extra event, a forged head, a plain link after a keyed one and a
    plain link no keyed one follows all count as broken."""
    expected_prev, expected_seq = GENESIS, 1
    keyed_seen = False
    unsealed: int | None = None
    for event in events:
        if event.seq != expected_seq or event.prev_hash != expected_prev:
            return expected_seq
        if not event.keyed and keyed_seen:
            return event.seq
        if not hmac.compare_digest(_link(key if event.keyed else None, event), event.hash):
            return event.seq
        if event.keyed:
            keyed_seen = True
            unsealed = None
        elif unsealed is None:
            unsealed = event.seq
        expected_prev, expected_seq = event.hash, event.seq + 1
    if head is not None and (head.seq != expected_seq - 1 or head.hash != expected_prev):
        return expected_seq
    return unsealed


def verify_chain(session: Session, chain: str, key: bytes | None = None) -> int | None:
    """Returns the sequence number of the chain's first broken link, or None if intact
    (checked under the configured audit key unless `key` is given)."""
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    )
    head = session.get(AuditChainHead, chain)
    return first_broken_link(events, head, configured_key() if key is None else key)


def chain_names(session: Session) -> list[str]:
    """Every chain with a head or an event (a head without events, or events without a head,
    is itself a break the verifier reports)."""
    names = union(select(AuditChainHead.chain), select(AuditEvent.chain).distinct())
    return sorted(session.scalars(select(names.subquery().c.chain)))


def seal_unkeyed_chains(session: Session, key: bytes) -> list[str]:
    """Appends a keyed link to every chain whose last event predates keying, so that link
    vouches for the plain ones before it; returns those chains."""
    unkeyed = session.scalars(
        select(AuditChainHead.chain)
        .join(
            AuditEvent,
            and_(AuditEvent.chain == AuditChainHead.chain, AuditEvent.seq == AuditChainHead.seq),
        )
        .where(AuditEvent.keyed.is_(False))
        .order_by(AuditChainHead.chain)
    ).all()
    for chain in unkeyed:
        tenant_id = None if chain == PLATFORM_CHAIN else chain
        append(session, key, actor="system", action=SEAL_ACTION, tenant_id=tenant_id)
    return list(unkeyed)
