"""/api/v1/admin/billing/alerts: what billing needs an operator for."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from fta.accounts.deps import AdminDep
from fta.billing.alerts import service
from fta.billing.alerts.models import BillingAlert
from fta.db import utcnow
from fta.web.deps import SessionDep
from fta.web.request_model import RequestModel

router = APIRouter(prefix="/admin/billing/alerts", tags=["billing"])


class AlertOut(BaseModel):
    id: int
    key: str
    kind: str
    tenant_id: str | None
    message: str
    blocking: bool = Field(description="the item stays out of the billing round until resolved")
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


class ResolutionIn(RequestModel):
    resolution: str = Field(min_length=1, max_length=2000, description="what was done about it")


def alert_out(alert: BillingAlert) -> AlertOut:
    return AlertOut.model_validate(alert, from_attributes=True)


@router.get("")
def list_open_alerts(admin: AdminDep, session: SessionDep) -> list[AlertOut]:
    return [alert_out(alert) for alert in service.open_alerts(session)]


@router.post("/{alert_id}/resolve")
def resolve_alert(
    alert_id: int, body: ResolutionIn, admin: AdminDep, session: SessionDep
) -> AlertOut:
    alert = service.resolve(
        session, alert_id, by=f"admin:{admin.user_id}", resolution=body.resolution, now=utcnow()
    )
    return alert_out(alert)
