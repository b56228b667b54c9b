"""EU VAT numbers checked against VIES, the European Commission's VAT Information Exchange
System, before a client is billed under reverse charge.

VIES's REST interface (`POST .../vies/rest-api/check-vat-number`, JSON) answers whether a
number is registered, with the registered name and address where the member state gives
them. A request that names the requester's own VAT number (the seller's) gets a consultation
number, `requestIdentifier`: with the check's date, it is the evidence the tax authorities
accept that the number was valid when the client was billed without French VAT.

Outcomes, and what fta does with them (docs/billing.md, "VIES"):
- valid: the identity is saved as verified, with the check's date and consultation number;
- invalid: the identity is refused (422) — a number VIES does not know is no VAT number;
- unavailable (VIES or the member state's service down, busy or too slow): the identity is
  saved as unverified and billed with French VAT until `recheck_unverified`, called by the
  billing round, gets an answer.
A registered name or postcode that differs from the declared one raises a billing alert
rather than a refusal: VIES writes names and addresses in each state's own format.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.accounts.models import Tenant
from fta.billing.alerts.service import raise_alert
from fta.billing.invoices.identity import (
    ClientIdentity,
    InvalidIdentity,
    VatNumberStatus,
    claims_reverse_charge,
    client_from_tenant,
)
from fta.settings import Settings

log = logging.getLogger(__name__)

# Error codes of VIES meaning "no answer now", not "no such number".
UNAVAILABLE_ERRORS = frozenset(
    {
        "MS_UNAVAILABLE",
        "MS_MAX_CONCURRENT_REQ",
        "GLOBAL_MAX_CONCURRENT_REQ",
        "SERVICE_UNAVAILABLE",
        "TIMEOUT",
        "VAT_BLOCKED",
        "IP_BLOCKED",
    }
)
# What member states that publish no name or address (Germany, for one) answer instead.
NOT_GIVEN = frozenset({"", "---"})
MAX_TEXT = 500


class ViesOutcome(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ViesAnswer:
    outcome: ViesOutcome
    request_identifier: str | None = None
    registered_name: str | None = None
    registered_address: str | None = None
    error: str | None = None  # VIES's error code, or what went wrong on the way


class Vies(Protocol):
    def check(self, vat_number: str) -> ViesAnswer:
        """Checks a compact VAT number with its country prefix (e.g. DE136695976)."""
        ...


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return None if text in NOT_GIVEN else text[:MAX_TEXT]


class ViesRestClient:
    """VIES's REST interface. `requester` is the seller's own VAT number: with it VIES
    returns a consultation number."""

    def __init__(
        self,
        url: str,
        requester: str | None,
        *,
        timeout: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self._requester = requester
        self._http = http or httpx.Client(timeout=timeout)

    def check(self, vat_number: str) -> ViesAnswer:
        body = {"countryCode": vat_number[:2], "vatNumber": vat_number[2:]}
        if self._requester:
            body["requesterMemberStateCode"] = self._requester[:2]
            body["requesterNumber"] = self._requester[2:]
        try:
            response = self._http.post(self.url, json=body, headers={"accept": "application/json"})
        except httpx.HTTPError as error:
            return ViesAnswer(ViesOutcome.UNAVAILABLE, error=f"{type(error).__name__}: {error}")
        try:
            data = response.json()
        except ValueError:
            return ViesAnswer(ViesOutcome.UNAVAILABLE, error=f"HTTP {response.status_code}")
        if not isinstance(data, dict):
            return ViesAnswer(ViesOutcome.UNAVAILABLE, error=f"HTTP {response.status_code}")
        # Errors come as {"actionSucceed": false, "errorWrappers": [{"error": CODE}]}, on an
        # error status or on a 200.
        wrappers = data.get("errorWrappers") or []
        codes = [str(w.get("error", "")) for w in wrappers if isinstance(w, dict)]
        user_error = str(data.get("userError") or "")
        if user_error in UNAVAILABLE_ERRORS:
            codes.append(user_error)
        if codes or data.get("actionSucceed") is False or response.status_code >= 400:
            code = ",".join(codes) or f"HTTP {response.status_code}"
            if any(c in UNAVAILABLE_ERRORS for c in codes) or not codes:
                return ViesAnswer(ViesOutcome.UNAVAILABLE, error=code)
            # INVALID_INPUT and the like: VIES refuses the number itself.
            return ViesAnswer(ViesOutcome.INVALID, error=code)
        if data.get("valid") is not True:
            return ViesAnswer(ViesOutcome.INVALID, error=user_error or "INVALID")
        return ViesAnswer(
            ViesOutcome.VALID,
            request_identifier=_text(data.get("requestIdentifier")),
            registered_name=_text(data.get("name")),
            registered_address=_text(data.get("address")),
        )


def vies_from_settings(settings: Settings) -> ViesRestClient:
    requester = settings.seller_vat_number.replace(" ", "").upper()
    return ViesRestClient(
        settings.vies_url,
        requester if requester[:2].isalpha() and requester[2:].isalnum() else None,
        timeout=settings.vies_timeout_seconds,
    )


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(c if c.isalnum() else " " for c in decomposed if not unicodedata.combining(c))
    return " ".join(kept.split())


def mismatches(client: ClientIdentity, answer: ViesAnswer) -> list[str]:
    """What VIES registered that differs from the declaration: the name (either one holding
    the other, accents, case and punctuation aside) and the postcode (within the address)."""
    found = []
    if answer.registered_name:
        declared, registered = _folded(client.name), _folded(answer.registered_name)
        if declared not in registered and registered not in declared:
            found.append(f"name {answer.registered_name!r} (declared {client.name!r})")
    if answer.registered_address:
        postcode = _folded(client.postcode)
        if postcode and postcode not in _folded(answer.registered_address):
            found.append(
                f"address {answer.registered_address!r} (declared postcode {client.postcode!r})"
            )
    return found


def apply_answer(
    session: Session, tenant: Tenant, client: ClientIdentity, answer: ViesAnswer, now: datetime
) -> None:
    """Records a VIES answer about the tenant's VAT number; an invalid one is refused."""
    if answer.outcome is ViesOutcome.INVALID:
        raise InvalidIdentity(
            f"VIES, the EU's VAT number register, does not know {client.vat_number} as a valid "
            f"VAT number ({answer.error}): check it, or declare the business without one "
            "(French VAT then applies)",
            item="vat_number",
            reason="unknown_to_vies",
        )
    if answer.outcome is ViesOutcome.UNAVAILABLE:
        if tenant.vat_number == client.vat_number and (
            tenant.vat_number_status == VatNumberStatus.VERIFIED
        ):
            return  # verified before; an outage does not undo that
        tenant.vat_number_status = VatNumberStatus.UNVERIFIED
        tenant.vat_number_checked_at = None
        tenant.vat_number_check_ref = None
        log.warning("VIES unavailable for tenant %s: %s", tenant.id, answer.error)
        return
    tenant.vat_number_status = VatNumberStatus.VERIFIED
    tenant.vat_number_checked_at = now
    tenant.vat_number_check_ref = (answer.request_identifier or "")[:64] or None
    differences = mismatches(client, answer)
    if differences:
        raise_alert(
            session,
            key=f"vies-mismatch:{tenant.id}:{client.vat_number}",
            kind="vies-mismatch",
            tenant_id=tenant.id,
            now=now,
            message=(
                f"VAT number {client.vat_number} is valid, but VIES registered "
                + "; ".join(differences)
                + ". Check that the client is the number's holder before billing it under "
                "reverse charge (formats differ between member states)."
            ),
        )


def check_identity(
    session: Session, tenant: Tenant, client: ClientIdentity, vies: Vies, now: datetime
) -> None:
    """Sets the tenant's VAT number status for the checked identity about to be saved."""
    if client.vat_number is None or not claims_reverse_charge(client):
        tenant.vat_number_status = None
        tenant.vat_number_checked_at = None
        tenant.vat_number_check_ref = None
        return
    apply_answer(session, tenant, client, vies.check(client.vat_number), now)


def recheck_unverified(session: Session, vies: Vies, now: datetime) -> list[str]:
    """Asks VIES again about every VAT number it could not check yet; returns the tenants
    whose number is now verified. A number VIES now calls invalid stays on French VAT and
    raises an alert for the operator to contact the client."""
    verified = []
    tenants = session.scalars(
        select(Tenant)
        .where(Tenant.vat_number_status == VatNumberStatus.UNVERIFIED)
        .order_by(Tenant.id)
        .with_for_update(skip_locked=True)
    ).all()
    for tenant in tenants:
        client = client_from_tenant(tenant)
        if client.vat_number is None or not claims_reverse_charge(client):
            continue
        answer = vies.check(client.vat_number)
        if answer.outcome is ViesOutcome.INVALID:
            tenant.vat_number_status = VatNumberStatus.INVALID
            raise_alert(
                session,
                key=f"vies-invalid:{tenant.id}:{client.vat_number}",
                kind="vies-invalid",
                tenant_id=tenant.id,
                now=now,
                message=(
                    f"VIES says the VAT number {client.vat_number} of tenant {tenant.id} is "
                    f"invalid ({answer.error}): it stays billed with French VAT; ask the "
                    "client to correct its billing identity."
                ),
            )
            continue
        apply_answer(session, tenant, client, answer, now)
        if tenant.vat_number_status == VatNumberStatus.VERIFIED:
            verified.append(tenant.id)
    return verified
