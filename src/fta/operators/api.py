"""/api/v1/admin/tenants: clients' accounts for the operator, and their suspension."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from fta.accounts.deps import AdminDep
from fta.db import utcnow
from fta.operators import service
from fta.operators.service import TenantRow
from fta.web.deps import ClientIpDep, SessionDep

router = APIRouter(prefix="/admin/tenants", tags=["operators"])

TenantId = Annotated[str, Path(min_length=1, max_length=8, pattern="^[a-z2-7]+$")]


class TenantOut(BaseModel):
    id: str
    display_name: str
    emails: list[str]
    plan: str
    status: str = Field(description="active, suspended, erasing or erased")
    billing_status: str
    suspension_reason: str | None = Field(
        description="an operator's suspension: the reason the client is shown"
    )
    suspended_at: datetime | None
    created_at: datetime


class SuspensionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(
        min_length=3, max_length=service.REASON_MAX, description="shown to the client"
    )


def tenant_out(row: TenantRow) -> TenantOut:
    tenant = row.tenant
    return TenantOut(
        id=tenant.id,
        display_name=tenant.display_name,
        emails=row.emails,
        plan=row.plan_name,
        status=tenant.status,
        billing_status=tenant.billing_status,
        suspension_reason=tenant.suspension_reason,
        suspended_at=tenant.suspended_at,
        created_at=tenant.created_at,
    )


def _one(session: SessionDep, tenant_id: str) -> TenantOut:
    overview = service.tenant_overview(session, tenant_id, utcnow())
    emails = sorted(user.email for user in overview.users)
    return tenant_out(TenantRow(overview.tenant, overview.plan.name, emails))


@router.get("")
def find_tenants(
    admin: AdminDep,
    session: SessionDep,
    q: Annotated[str, Query(max_length=200, description="part of an id, name or e-mail")] = "",
) -> list[TenantOut]:
    return [tenant_out(row) for row in service.find_tenants(session, q)]


@router.get("/{tenant_id}")
def get_tenant(tenant_id: TenantId, admin: AdminDep, session: SessionDep) -> TenantOut:
    return _one(session, tenant_id)


@router.put("/{tenant_id}/suspension")
def suspend_tenant(
    tenant_id: TenantId, body: SuspensionIn, admin: AdminDep, session: SessionDep, ip: ClientIpDep
) -> TenantOut:
    service.suspend_tenant(session, tenant_id, body.reason, operator=admin, ip=ip, now=utcnow())
    return _one(session, tenant_id)


@router.delete("/{tenant_id}/suspension")
def reactivate_tenant(
    tenant_id: TenantId, admin: AdminDep, session: SessionDep, ip: ClientIpDep
) -> TenantOut:
    service.reactivate_tenant(session, tenant_id, operator=admin, ip=ip, now=utcnow())
    return _one(session, tenant_id)
