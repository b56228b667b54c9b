"""/api/v1/billing/identity: who the client's invoices are made out to
(fta.billing.identities saves it). Every field is bounded by its column, so an over-long
value is a 422 problem, never a database error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from fta.accounts.deps import PrincipalDep, TenantDep
from fta.accounts.models import Tenant
from fta.billing.identities import save_identity
from fta.billing.invoices.identity import ClientIdentity, CustomerType
from fta.billing.vies import Vies, vies_from_settings
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

    def identity(self) -> ClientIdentity:
        """The identity asked for, to be checked (`fta.billing.identities.save_identity`)."""
        return ClientIdentity(
            name=self.legal_name,
            address_lines=tuple(line for line in (self.address_line1, self.address_line2) if line),
            postcode=self.postcode,
            city=self.city,
            country=self.country,
            siren=self.siren,
            vat_number=self.vat_number,
            customer_type=CustomerType(self.customer_type),
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
    row = save_identity(
        session,
        tenant,
        body.identity(),
        actor=str(principal.user_id),
        ip=ip,
        vies=vies,
        now=utcnow(),
    )
    return _out(row)
