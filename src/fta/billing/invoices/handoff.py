"""Handing issued Factur-X invoices to the Plateforme Agréée (PA) that transmits them.

Each PA has its own API; fta speaks to it through `Handoff`, chosen by settings:
- "directory": the Factur-X PDF and its XML are written to an outbox folder that the PA's
  connector (or an SFTP agent) collects;
- "api": each document is uploaded over HTTPS to a REST endpoint (`POST {url}/invoices`,
  multipart, bearer token, the invoice number as idempotency key).
Every business document with Factur-X is handed off once; `invoice_handoffs` records it.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import facturx
import httpx
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, undefer

from fta.billing.alerts.service import raise_alert, settle
from fta.billing.invoices.models import Invoice
from fta.db import Base
from fta.settings import Settings, get_settings

BATCH = 100
ALERT_KIND = "einvoice_handoff"


class InvoiceHandoff(Base):
    """An invoice the PA has received: when, through which mode, and its receipt."""

    __tablename__ = "invoice_handoffs"

    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    receipt: Mapped[str] = mapped_column(String(300))
    handed_off_at: Mapped[datetime]


@dataclass(frozen=True)
class Receipt:
    """What the PA (or the outbox) acknowledged: its reference for the document."""

    reference: str


class Handoff(Protocol):
    mode: str

    def deliver(self, invoice: Invoice) -> Receipt:
        """Hands one invoice over; delivering the same invoice again is harmless."""
        ...


def factur_x_xml(pdf: bytes) -> bytes:
    _name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
    if not xml:
        raise ValueError("the PDF embeds no Factur-X XML")
    return bytes(xml)


def _write_once(path: Path, content: bytes) -> None:
    """Writes `content` atomically; an identical file already there is left as it is."""
    if path.exists() and path.read_bytes() == content:
        return
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)


class DirectoryHandoff:
    """Writes NUMBER.pdf and NUMBER.xml into the outbox; the PA's connector collects them."""

    mode = "directory"

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox

    def deliver(self, invoice: Invoice) -> Receipt:
        self.outbox.mkdir(parents=True, exist_ok=True)
        pdf = invoice.pdf
        # The XML goes last: a connector that waits for it finds the PDF complete.
        _write_once(self.outbox / f"{invoice.number}.pdf", pdf)
        _write_once(self.outbox / f"{invoice.number}.xml", factur_x_xml(pdf))
        return Receipt(str(self.outbox / f"{invoice.number}.pdf"))


class PlatformApiHandoff:
    """Uploads each Factur-X PDF to the PA's REST API; a repeated upload of the same number is
    answered with the PA's first receipt (HTTP 200 or 409), a new one with 201."""

    mode = "api"

    def __init__(self, base_url: str, token: str, client: httpx.Client) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.client = client

    def deliver(self, invoice: Invoice) -> Receipt:
        response = self.client.post(
            f"{self.base_url}/invoices",
            headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": invoice.number},
            data={"number": invoice.number, "format": "factur-x"},
            files={"file": (f"{invoice.number}.pdf", invoice.pdf, "application/pdf")},
        )
        if response.status_code not in (200, 201, 409):
            raise RuntimeError(
                f"the e-invoicing platform refused {invoice.number}: HTTP "
                f"{response.status_code} {response.text[:300]}"
            )
        reference = response.json().get("id")
        if not isinstance(reference, str) or not reference:
            raise RuntimeError(f"the e-invoicing platform gave no id for {invoice.number}")
        return Receipt(reference)


def handoff_from_settings(settings: Settings) -> Handoff | None:
    """The configured hand-off; None while the operator has chosen none."""
    if settings.einvoice_handoff == "directory":
        return DirectoryHandoff(Path(settings.einvoice_outbox_dir))
    if settings.einvoice_handoff == "api":
        if not settings.einvoice_pa_url:
            raise ValueError("FTA_EINVOICE_HANDOFF=api needs FTA_EINVOICE_PA_URL")
        client = httpx.Client(timeout=settings.einvoice_pa_timeout_seconds)
        token = settings.einvoice_pa_token.get_secret_value()
        return PlatformApiHandoff(settings.einvoice_pa_url, token, client)
    return None


def hand_off_pending(session: Session, now: datetime, handoff: Handoff | None = None) -> int:
    """Hands every Factur-X document not handed off yet to the PA, oldest first, in the
    caller's transaction; returns how many were. A failure opens an operator alert for that
    document (it is tried again next time) and the others go on."""
    handoff = handoff if handoff is not None else handoff_from_settings(get_settings())
    if handoff is None:
        return 0
    pending = session.execute(
        select(Invoice)
        .outerjoin(InvoiceHandoff, InvoiceHandoff.invoice_id == Invoice.id)
        .where(Invoice.facturx.is_(True), InvoiceHandoff.invoice_id.is_(None))
        .order_by(Invoice.issued_at, Invoice.number)
        .limit(BATCH)
        .options(undefer(Invoice.pdf))
    ).scalars()
    delivered = 0
    for invoice in pending:
        key = f"einvoice-handoff:{invoice.number}"
        try:
            receipt = handoff.deliver(invoice)
        except (OSError, ValueError, RuntimeError, httpx.HTTPError) as error:
            raise_alert(
                session,
                key=key,
                kind=ALERT_KIND,
                message=f"{invoice.number} could not be handed to the e-invoicing platform "
                f"({handoff.mode}): {error}",
                now=now,
                tenant_id=invoice.tenant_id,
            )
            continue
        session.add(
            InvoiceHandoff(
                invoice_id=invoice.id,
                mode=handoff.mode,
                receipt=receipt.reference[:300],
                handed_off_at=now,
            )
        )
        settle(session, key, now)
        delivered += 1
    session.flush()
    return delivered
