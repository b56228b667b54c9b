"""Who the client's invoices are made out to: the billing identity kept on the account.

Checked when saved (SIREN and VAT numbers with python-stdnum, as for an invoice; an EU VAT
number outside France against VIES, fta.billing.vies) and snapshotted into each invoice when
it is issued: changing it never alters an issued one. The API (`PUT /api/v1/billing/identity`)
and the portal's page save it through `save_identity`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from fta import audit
from fta.accounts.models import Tenant
from fta.billing.alerts.service import raise_alert
from fta.billing.invoices.identity import ClientIdentity, check_client
from fta.billing.invoices.vat import refusal
from fta.billing.vies import Vies, check_identity


def save_identity(
    session: Session,
    tenant_id: str,
    wanted: ClientIdentity,
    *,
    actor: str,
    ip: str | None,
    vies: Vies,
    now: datetime,
) -> Tenant:
    """Checks `wanted` and saves it as the account's billing identity. An invalid item
    refuses the whole identity (`InvalidIdentity` names the item) and changes nothing."""
    checked = check_client(wanted)
    row = session.get_one(Tenant, tenant_id)
    # Before anything changes: a number VIES calls invalid refuses the whole identity.
    check_identity(session, row, checked, vies, now)
    reason = refusal(checked)
    if reason:
        raise_alert(
            session,
            key=f"vat-territory:{tenant_id}",
            kind="vat-territory",
            tenant_id=tenant_id,
            now=now,
            message=f"tenant {tenant_id}: {reason}",
        )
    row.customer_type = checked.customer_type.value
    row.legal_name = checked.name
    row.address_line1 = checked.address_lines[0]
    row.address_line2 = checked.address_lines[1] if len(checked.address_lines) > 1 else None
    row.postcode, row.city, row.country = checked.postcode, checked.city, checked.country
    row.siren, row.vat_number = checked.siren, checked.vat_number
    audit.service.record(
        session,
        actor=actor,
        tenant_id=tenant_id,
        action="billing.identity",
        target=tenant_id,
        ip=ip,
    )
    return row
