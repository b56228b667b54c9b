"""How full each account's data disk is: the worker records what the host's tenant disk
helper measures; the operator's console and the account's storage page read it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Numeric, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fta.access.models import TenantDiskUsage
from fta.accounts.models import CLOSED, Tenant
from fta.runtime import TenantDiskUse

# From this share of its disk (in percent) an account is shown as nearly full.
NEARLY_FULL_PERCENT = 90
ROWS_PER_STATEMENT = 5_000


def record_disk_usage(session: Session, disks: Sequence[TenantDiskUse], now: datetime) -> None:
    """Records these disks' measures. A disk whose account is not in the database, or is
    being erased, is left out: the erasure deletes the account's row and then its disk."""
    measured = {disk.tenant_id: disk for disk in disks}
    known = session.scalars(
        select(Tenant.id).where(Tenant.id.in_(list(measured)), Tenant.status.not_in(CLOSED))
    ).all()
    rows = [
        {
            "tenant_id": tenant_id,
            "size_bytes": measured[tenant_id].size_bytes,
            "used_bytes": measured[tenant_id].used_bytes,
            "measured_at": now,
        }
        for tenant_id in sorted(known)
    ]
    # A statement's parameters are bounded (65,535): a few thousand accounts at a time.
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        statement = insert(TenantDiskUsage).values(rows[start : start + ROWS_PER_STATEMENT])
        new = statement.excluded
        measures = {"size_bytes": new.size_bytes, "used_bytes": new.used_bytes, "measured_at": now}
        session.execute(
            statement.on_conflict_do_update(index_elements=["tenant_id"], set_=measures)
        )


def disk_usage(session: Session, tenant_id: str) -> TenantDiskUsage | None:
    """The account's disk as last measured; None before its first job made it."""
    return session.get(TenantDiskUsage, tenant_id)


def fullest_disks(session: Session, limit: int) -> list[tuple[TenantDiskUsage, str]]:
    """The accounts' disks, the fullest (by share) first, with each account's name."""
    share = TenantDiskUsage.used_bytes.cast(Numeric) / func.nullif(TenantDiskUsage.size_bytes, 0)
    rows = session.execute(
        select(TenantDiskUsage, Tenant.display_name)
        .join(Tenant, Tenant.id == TenantDiskUsage.tenant_id)
        .order_by(share.desc().nulls_last(), TenantDiskUsage.tenant_id)
        .limit(limit)
    ).all()
    return [(disk, name) for disk, name in rows]


def used_percent(disk: TenantDiskUsage) -> int:
    """The share of the disk taken, in whole percent (rounded down)."""
    return disk.used_bytes * 100 // disk.size_bytes if disk.size_bytes else 100


def nearly_full(disk: TenantDiskUsage) -> bool:
    return used_percent(disk) >= NEARLY_FULL_PERCENT


def count_nearly_full(session: Session) -> int:
    used = TenantDiskUsage.used_bytes * 100
    limit = TenantDiskUsage.size_bytes * NEARLY_FULL_PERCENT
    return session.scalar(select(func.count()).where(used >= limit)) or 0
