"""/api/v1/strategies."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from fta.accounts.deps import PrincipalDep, TenantDep
from fta.strategies import service
from fta.strategies.models import Strategy
from fta.strategies.validation import MAX_SOURCE_BYTES
from fta.web.deps import ClientIpDep, SessionDep

router = APIRouter(prefix="/strategies", tags=["strategies"])

# Characters, not bytes: the byte limit is checked on the UTF-8 encoding in the service.
_SOURCE = Field(min_length=1, max_length=MAX_SOURCE_BYTES * 4)


class StrategyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    source: str = _SOURCE


class StrategyVersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = _SOURCE


class StrategyCreated(BaseModel):
    id: uuid.UUID
    name: str
    version: int


class StrategyOut(BaseModel):
    id: uuid.UUID
    name: str
    version: int
    sha256: str
    created_at: datetime
    updated_at: datetime


class StrategyDetail(StrategyOut):
    source: str


class VersionOut(BaseModel):
    version: int
    sha256: str
    bytes: int = Field(description="size of its source, counted against the plan's storage")
    created_at: datetime
    pinned: bool = Field(description="a job or bot ran it: it is kept and cannot be deleted")


def _summary(strategy: Strategy, sha256: str) -> StrategyOut:
    return StrategyOut(
        id=strategy.id,
        name=strategy.name,
        version=strategy.latest_version,
        sha256=sha256,
        created_at=strategy.created_at,
        updated_at=strategy.updated_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_strategy(
    body: StrategyIn,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> StrategyCreated:
    strategy, version = service.create_strategy(
        session, principal, tenant, name=body.name, source=body.source, ip=ip
    )
    return StrategyCreated(id=strategy.id, name=strategy.name, version=version.version)


@router.get("")
def list_strategies(tenant: TenantDep, session: SessionDep) -> list[StrategyOut]:
    return [
        _summary(s, service.latest_version(session, s).sha256)
        for s in service.list_strategies(session, tenant)
    ]


@router.get("/{strategy_id}")
def get_strategy(strategy_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> StrategyDetail:
    strategy = service.get_strategy(session, tenant, strategy_id)
    version = service.latest_version(session, strategy)
    return StrategyDetail(**_summary(strategy, version.sha256).model_dump(), source=version.source)


@router.put("/{strategy_id}")
def add_version(
    strategy_id: uuid.UUID,
    body: StrategyVersionIn,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> StrategyCreated:
    version = service.add_version(
        session, principal, tenant, strategy_id, source=body.source, ip=ip
    )
    strategy = service.get_strategy(session, tenant, strategy_id)
    return StrategyCreated(id=strategy.id, name=strategy.name, version=version.version)


@router.get("/{strategy_id}/versions")
def list_versions(
    strategy_id: uuid.UUID, tenant: TenantDep, session: SessionDep
) -> list[VersionOut]:
    return [
        VersionOut(
            version=stored.version,
            sha256=stored.sha256,
            bytes=stored.bytes,
            created_at=stored.created_at,
            pinned=stored.pinned,
        )
        for stored in service.list_versions(session, tenant, strategy_id)
    ]


@router.delete("/{strategy_id}/versions/{version}", status_code=status.HTTP_204_NO_CONTENT)
def delete_version(
    strategy_id: uuid.UUID,
    version: int,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> Response:
    service.delete_version(session, principal, tenant, strategy_id, version, ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{strategy_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_strategy(
    strategy_id: uuid.UUID,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> Response:
    service.hide_strategy(session, principal, tenant, strategy_id, ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
