"""/api/v1/billing/identity: who the client's invoices are made out to.

Checked when saved (SIREN and VAT numbers with python-stdnum, as for an invoice; an EU VAT
number outside France against VIES, fta.billing.vies) and snapshotted into each invoice when
it is issued: changing it never alters an issued one. Every field is bounded by its column,
so an over-long value is a 422 problem, never a database error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fta import audit
from fta.accounts.deps import PrincipalDep, TenantDep
from fta.accounts.models import Tenant
from fta.billing.alerts.service import raise_alert
from fta.billing.invoices.identity import ClientIdentity, CustomerType, check_client
from fta.billing.invoices.vat import refusal
from fta.billing.vies import Vies, check_identity, vies_from_settings
from fta.db import utcnow
from fta.settings import get_settings
from fta.web.deps import ClientIpDep, SessionDep

router = APIRouter(prefix="/billing/identity", tags=["billing"])

# Printed on legal documents: no control character, and none that Postgres refuses (NUL).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
Text200 = Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]


def get_vies() -> Vies:
    return vies_from_settings(get_settings())


ViesDep = Annotated[Vies, Depends(get_vies)]


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_type: Literal["private", "business"]
    legal_name: Text200 = Field(description="person or company name")
    address_line1: Text200
    address_line2: Text200 | None = None
    postcode: str = Field(min_length=1, max_length=16, pattern=PRINTABLE)
    city: str = Field(min_length=1, max_length=100, pattern=PRINTABLE)
    country: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2, e.g. FR")
    # Spaces and dots allowed as typed; stored as its 9 digits.
    siren: str | None = Field(
        default=None, max_length=20, pattern=PRINTABLE, description="French businesses"
    )
    vat_number: str | None = Field(
        default=None,
        max_length=40,
        pattern=PRINTABLE,
        description="EU VAT number, or the tax number of a business outside the EU",
    )


class IdentityOut(BaseModel):
    customer_type: str
    legal_name: str | None
    address_line1: str | None
    address_line2: str | None
    postcode: str | None
    city: str | None
    country: str | None
    siren: str | None
    vat_number: str | None
    vat_number_status: str | None = Field(
        description="EU VAT number outside France: verified (by VIES: billed HT, reverse "
        "charge), unverified (VIES did not answer: French VAT until it does) or invalid"
    )
    vat_number_checked_at: datetime | None
    vat_number_check_ref: str | None = Field(description="VIES consultation number")


def _out(tenant: Tenant) -> IdentityOut:
    return IdentityOut(
        customer_type=tenant.customer_type,
        legal_name=tenant.legal_name,
        address_line1=tenant.address_line1,
        address_line2=tenant.address_line2,
        postcode=tenant.postcode,
        city=tenant.city,
        country=tenant.country,
        siren=tenant.siren,
        vat_number=tenant.vat_number,
        vat_number_status=tenant.vat_number_status,
        vat_number_checked_at=tenant.vat_number_checked_at,
        vat_number_check_ref=tenant.vat_number_check_ref,
    )


def _tenant(session: Session, tenant_id: str) -> Tenant:
    return session.get_one(Tenant, tenant_id)


@router.get("")
def get_identity(tenant: TenantDep, session: SessionDep) -> IdentityOut:
    return _out(_tenant(session, tenant))


@router.put("")
def put_identity(
    body: IdentityIn,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
    vies: ViesDep,
) -> IdentityOut:
    checked = check_client(
        ClientIdentity(
            name=body.legal_name,
            address_lines=tuple(line for line in (body.address_line1, body.address_line2) if line),
            postcode=body.postcode,
            city=body.city,
            country=body.country,
            siren=body.siren,
            vat_number=body.vat_number,
            customer_type=CustomerType(body.customer_type),
        )
    )
    row = _tenant(session, tenant)
    now = utcnow()
    # Before anything changes: a number VIES calls invalid refuses the whole identity.
    check_identity(session, row, checked, vies, now)
    reason = refusal(checked)
    if reason:
        raise_alert(
            session,
            key=f"vat-territory:{tenant}",
            kind="vat-territory",
            tenant_id=tenant,
            now=now,
            message=f"tenant {tenant}: {reason}",
        )
    row.customer_type = checked.customer_type.value
    row.legal_name = checked.name
    row.address_line1 = checked.address_lines[0]
    row.address_line2 = checked.address_lines[1] if len(checked.address_lines) > 1 else None
    row.postcode, row.city, row.country = checked.postcode, checked.city, checked.country
    row.siren, row.vat_number = checked.siren, checked.vat_number
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant,
        action="billing.identity",
        target=tenant,
        ip=ip,
    )
    return _out(row)
