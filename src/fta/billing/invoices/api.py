"""/api/v1/invoices: a client's own invoices and credit notes, and their PDFs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from fta.accounts.deps import TenantDep
from fta.billing.invoices import service
from fta.billing.invoices.models import Invoice
from fta.web.deps import SessionDep

router = APIRouter(prefix="/invoices", tags=["invoices"])


class InvoiceOut(BaseModel):
    id: uuid.UUID
    number: str
    kind: str
    credits_invoice_id: uuid.UUID | None
    issued_at: datetime
    due_on: date
    period_start: date
    period_end: date
    currency: str
    total_ht_cents: int
    total_vat_cents: int
    total_ttc_cents: int
    vat_rate: Decimal
    vat_regime: str
    facturx: bool
    pdf_url: str


def _out(invoice: Invoice) -> InvoiceOut:
    return InvoiceOut(
        id=invoice.id,
        number=invoice.number,
        kind=invoice.kind,
        credits_invoice_id=invoice.credits_invoice_id,
        issued_at=invoice.issued_at,
        due_on=invoice.due_on,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        currency=invoice.currency,
        total_ht_cents=invoice.total_ht_cents,
        total_vat_cents=invoice.total_vat_cents,
        total_ttc_cents=invoice.total_ttc_cents,
        vat_rate=invoice.vat_rate,
        vat_regime=invoice.vat_regime,
        facturx=invoice.facturx,
        pdf_url=f"/api/v1/invoices/{invoice.id}.pdf",
    )


@router.get("")
def list_invoices(tenant: TenantDep, session: SessionDep) -> list[InvoiceOut]:
    """Your invoices and credit notes, newest first (amounts in euro cents)."""
    return [_out(invoice) for invoice in service.list_invoices(session, tenant)]


@router.get(
    "/{invoice_id}.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "the PDF"}},
)
def invoice_pdf(invoice_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> Response:
    """The invoice as issued: a PDF (with its Factur-X XML for business clients)."""
    invoice = service.invoice_pdf(session, tenant, invoice_id)
    return Response(
        content=invoice.pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{invoice.number}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
