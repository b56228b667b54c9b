"""Strategies: create, list, add versions, hide; the storage each tenant's versions take."""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import column, delete, exists, func, or_, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from fta import audit
from fta.accounts.models import Tenant
from fta.accounts.service import Principal
from fta.db import utcnow
from fta.errors import Conflict, NotFound, RetryLater
from fta.settings import get_settings
from fta.strategies.models import Strategy, StrategyUpload, StrategyVersion
from fta.strategies.validation import check_name, check_source


class StorageFull(Conflict):
    title = "Strategy storage full"


class TooManyUploads(RetryLater):
    title = "Too many strategy versions"


@dataclass(frozen=True)
class StrategyStorage:
    """What a tenant's strategy versions take (hidden strategies' included), and its plan's
    bounds."""

    versions: int
    bytes: int
    max_versions: int
    max_bytes: int

    def refusal(self, new_bytes: int) -> str | None:
        """Why one more version of `new_bytes` does not fit, with what to do; None if it does."""
        if self.versions + 1 > self.max_versions:
            held = f"{self.versions} strategy versions, your plan's limit"
        elif self.bytes + new_bytes > self.max_bytes:
            held = (
                f"{self.bytes} bytes of strategy code, and this version ({new_bytes} bytes) "
                f"would pass your plan's limit of {self.max_bytes}"
            )
        else:
            return None
        return (
            f"your account already stores {held}: delete versions you no longer need "
            "(GET /api/v1/strategies/{id}/versions lists them; DELETE "
            "/api/v1/strategies/{id}/versions/{version} removes one that no job or bot ran) "
            "or strategies you no longer use, or move to a plan that stores more"
        )


def _sha256(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def get_strategy(session: Session, tenant_id: str, strategy_id: uuid.UUID) -> Strategy:
    """A visible strategy of this tenant; any other answers NotFound, never its data."""
    strategy = session.get(Strategy, strategy_id)
    if strategy is None or strategy.tenant_id != tenant_id or strategy.deleted_at is not None:
        raise NotFound(f"no strategy {strategy_id} in your account")
    return strategy


def latest_version(session: Session, strategy: Strategy) -> StrategyVersion:
    return session.scalars(
        select(StrategyVersion).where(
            StrategyVersion.strategy_id == strategy.id,
            StrategyVersion.version == strategy.latest_version,
        )
    ).one()


def get_version(
    session: Session, tenant_id: str, strategy_id: uuid.UUID, number: int
) -> StrategyVersion:
    """One stored version of a visible strategy of this tenant, its code included."""
    strategy = get_strategy(session, tenant_id, strategy_id)
    version = session.scalars(
        select(StrategyVersion).where(
            StrategyVersion.strategy_id == strategy.id, StrategyVersion.version == number
        )
    ).first()
    if version is None:
        raise NotFound(f"strategy {strategy_id} has no version {number} (any longer)")
    return version


def list_strategies(session: Session, tenant_id: str) -> list[Strategy]:
    return list(
        session.scalars(
            select(Strategy)
            .where(Strategy.tenant_id == tenant_id, Strategy.deleted_at.is_(None))
            .order_by(Strategy.created_at)
        )
    )


# The tables whose rows run a strategy version: jobs and bots. Their packages sit above this
# one (they run strategies), so the tables are named here rather than imported;
# tests/integration/test_strategy_versions.py checks that every foreign key to a version is.
VERSION_RUNNERS = (
    table("jobs", column("strategy_version_id")),
    table("bots", column("strategy_version_id")),
)


def version_is_pinned() -> ColumnElement[bool]:
    """True where a job or a bot (a deleted one included) references the version: it ran, or
    will run, that code, so the version is kept."""
    return or_(
        *(
            exists().where(runner.c.strategy_version_id == StrategyVersion.id)
            for runner in VERSION_RUNNERS
        )
    )


@dataclass(frozen=True)
class StoredVersion:
    version: int
    sha256: str
    bytes: int
    created_at: datetime
    # A job or bot ran it: it cannot be deleted.
    pinned: bool


def list_versions(session: Session, tenant_id: str, strategy_id: uuid.UUID) -> list[StoredVersion]:
    """The strategy's stored versions, newest first (without their code)."""
    strategy = get_strategy(session, tenant_id, strategy_id)
    rows = session.execute(
        select(
            StrategyVersion.version,
            StrategyVersion.sha256,
            func.octet_length(StrategyVersion.source),
            StrategyVersion.created_at,
            version_is_pinned(),
        )
        .where(StrategyVersion.strategy_id == strategy.id)
        .order_by(StrategyVersion.version.desc())
    ).all()
    return [
        StoredVersion(version, sha256, int(size), created_at, bool(pinned))
        for version, sha256, size, created_at, pinned in rows
    ]


def storage(session: Session, tenant: Tenant) -> StrategyStorage:
    versions, size = session.execute(
        select(func.count(), func.coalesce(func.sum(func.octet_length(StrategyVersion.source)), 0))
        .select_from(StrategyVersion)
        .join(Strategy, Strategy.id == StrategyVersion.strategy_id)
        .where(Strategy.tenant_id == tenant.id)
    ).one()
    return StrategyStorage(
        versions=int(versions),
        bytes=int(size),
        max_versions=tenant.plan.max_strategy_versions,
        max_bytes=tenant.plan.max_strategy_bytes,
    )


def _locked_tenant(session: Session, tenant_id: str) -> Tenant:
    """The tenant's row, locked: its versions are counted, stored and deleted one writer at a
    time, and never while one of its jobs is being submitted (which locks it too)."""
    tenant = session.scalars(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).first()
    if tenant is None:
        raise NotFound("unknown account")
    return tenant


def _reserve_upload(session: Session, tenant: Tenant, source: str, now: datetime) -> None:
    """Refuses a version past the upload throttle or the plan's storage; counts it otherwise.
    The caller holds the tenant's lock."""
    settings = get_settings()
    per_window = settings.strategy_uploads_per_window
    window = timedelta(seconds=settings.strategy_upload_window_seconds)
    session.execute(
        delete(StrategyUpload).where(
            StrategyUpload.tenant_id == tenant.id, StrategyUpload.created_at <= now - window
        )
    )
    nth_latest = session.scalars(
        select(StrategyUpload.created_at)
        .where(StrategyUpload.tenant_id == tenant.id)
        .order_by(StrategyUpload.created_at.desc())
        .offset(per_window - 1)
        .limit(1)
    ).first()
    if nth_latest is not None:
        wait = max(1, math.ceil((nth_latest + window - now).total_seconds()))
        raise TooManyUploads(
            f"you stored {per_window} strategy versions within "
            f"{settings.strategy_upload_window_seconds} seconds: save this one in {wait} s",
            retry_after=wait,
        )
    refusal = storage(session, tenant).refusal(len(source.encode("utf-8")))
    if refusal is not None:
        raise StorageFull(refusal)
    session.add(StrategyUpload(tenant_id=tenant.id, created_at=now))


def create_strategy(
    session: Session,
    principal: Principal,
    tenant_id: str,
    *,
    name: str,
    source: str,
    ip: str | None,
) -> tuple[Strategy, StrategyVersion]:
    check_name(name)
    check_source(name, source)
    tenant = _locked_tenant(session, tenant_id)
    taken = session.scalars(
        select(Strategy.id).where(
            Strategy.tenant_id == tenant_id, Strategy.name == name, Strategy.deleted_at.is_(None)
        )
    ).first()
    if taken is not None:
        raise Conflict(
            f"you already have a strategy named {name!r} ({taken}): "
            "PUT /api/v1/strategies/{id} adds a new version of it"
        )
    _reserve_upload(session, tenant, source, utcnow())
    strategy = Strategy(tenant_id=tenant_id, name=name, latest_version=1)
    session.add(strategy)
    session.flush()
    version = StrategyVersion(
        strategy_id=strategy.id, version=1, source=source, sha256=_sha256(source)
    )
    session.add(version)
    session.flush()
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant_id,
        action="strategy.create",
        target=str(strategy.id),
        ip=ip,
    )
    return strategy, version


def add_version(
    session: Session,
    principal: Principal,
    tenant_id: str,
    strategy_id: uuid.UUID,
    *,
    source: str,
    ip: str | None,
) -> StrategyVersion:
    """Adds a version unless the source is identical to the latest one."""
    tenant = _locked_tenant(session, tenant_id)
    strategy = session.scalars(
        select(Strategy).where(Strategy.id == strategy_id).with_for_update()
    ).first()
    if strategy is None or strategy.tenant_id != tenant_id or strategy.deleted_at is not None:
        raise NotFound(f"no strategy {strategy_id} in your account")
    check_source(strategy.name, source)
    current = latest_version(session, strategy)
    if current.sha256 == _sha256(source):
        return current
    _reserve_upload(session, tenant, source, utcnow())
    version = StrategyVersion(
        strategy_id=strategy.id,
        version=strategy.latest_version + 1,
        source=source,
        sha256=_sha256(source),
    )
    strategy.latest_version = version.version
    strategy.updated_at = utcnow()
    session.add(version)
    session.flush()
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant_id,
        action="strategy.version",
        target=f"{strategy.id}@{version.version}",
        ip=ip,
    )
    return version


def hide_strategy(
    session: Session, principal: Principal, tenant_id: str, strategy_id: uuid.UUID, ip: str | None
) -> None:
    """Hides the strategy and deletes its versions that no job or bot ran: those stay, since
    jobs and bots reference the code they ran."""
    _locked_tenant(session, tenant_id)
    strategy = get_strategy(session, tenant_id, strategy_id)
    strategy.deleted_at = utcnow()
    _delete_versions(
        session,
        (StrategyVersion.strategy_id == strategy.id) & ~version_is_pinned(),
    )
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant_id,
        action="strategy.delete",
        target=str(strategy.id),
        ip=ip,
    )


def delete_version(
    session: Session,
    principal: Principal,
    tenant_id: str,
    strategy_id: uuid.UUID,
    number: int,
    ip: str | None,
) -> None:
    """Deletes one version, which frees its storage: never the latest (the strategy's code)
    nor one a job or bot ran."""
    _locked_tenant(session, tenant_id)
    strategy = get_strategy(session, tenant_id, strategy_id)
    row = session.execute(
        select(StrategyVersion.id, version_is_pinned()).where(
            StrategyVersion.strategy_id == strategy.id, StrategyVersion.version == number
        )
    ).first()
    if row is None:
        raise NotFound(f"strategy {strategy_id} has no version {number} (any longer)")
    version_id, pinned = row
    if number == strategy.latest_version:
        raise Conflict(
            f"version {number} is the strategy's current code: PUT a new version first, or "
            "delete the strategy"
        )
    if pinned:
        raise Conflict(
            f"version {number} is kept: a job or bot ran it, and it stays as long as they do"
        )
    _delete_versions(session, StrategyVersion.id == version_id)
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant_id,
        action="strategy.version.delete",
        target=f"{strategy.id}@{number}",
        ip=ip,
    )


def _delete_versions(session: Session, condition: ColumnElement[bool]) -> None:
    try:
        session.execute(delete(StrategyVersion).where(condition))
    except IntegrityError as exc:
        # A bot pinned one of them at this very moment (job submissions wait on our lock).
        raise Conflict("a bot was just given this strategy's code: try again in a moment") from exc
