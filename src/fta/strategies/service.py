"""Strategies: create, list, add versions, hide."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta import audit
from fta.accounts.service import Principal
from fta.db import utcnow
from fta.errors import Conflict, NotFound
from fta.strategies.models import Strategy, StrategyVersion
from fta.strategies.validation import check_name, check_source


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


def list_strategies(session: Session, tenant_id: str) -> list[Strategy]:
    return list(
        session.scalars(
            select(Strategy)
            .where(Strategy.tenant_id == tenant_id, Strategy.deleted_at.is_(None))
            .order_by(Strategy.created_at)
        )
    )


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
    strategy = session.scalars(
        select(Strategy).where(Strategy.id == strategy_id).with_for_update()
    ).first()
    if strategy is None or strategy.tenant_id != tenant_id or strategy.deleted_at is not None:
        raise NotFound(f"no strategy {strategy_id} in your account")
    check_source(strategy.name, source)
    current = latest_version(session, strategy)
    if current.sha256 == _sha256(source):
        return current
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
    """Hides the strategy; its versions stay, since jobs reference the code they ran."""
    strategy = get_strategy(session, tenant_id, strategy_id)
    strategy.deleted_at = utcnow()
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant_id,
        action="strategy.delete",
        target=str(strategy.id),
        ip=ip,
    )
