"""Issuing invoices and credit notes, and reading a tenant's own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from fta.accounts.models import Tenant
from fta.audit.service import record
from fta.billing.invoices import facturx, pdf
from fta.billing.invoices.document import (
    CreditedInvoice,
    Document,
    mentions,
    payment_terms,
)
from fta.billing.invoices.identity import (
    ClientIdentity,
    CustomerType,
    SellerIdentity,
    check_client,
    seller_from_settings,
)
from fta.billing.invoices.models import Invoice, InvoiceLine, Kind, Series, VatRegime
from fta.billing.invoices.money import Line, Totals, check_line, compute, compute_from_gross
from fta.billing.invoices.numbering import Number, lock_counter
from fta.billing.invoices.paris import paris_day
from fta.billing.invoices.vat import VatTreatment, treatment
from fta.errors import Conflict, Invalid, NotFound
from fta.settings import get_settings

MAX_LINES = 100
MAX_REF = 128
MAX_REASON = 500


class Period(NamedTuple):
    """The service period billed, both days included."""

    start: date
    end: date


def _checked_lines(lines: Sequence[Line]) -> list[Line]:
    if not lines or len(lines) > MAX_LINES:
        raise Invalid(f"an invoice needs 1 to {MAX_LINES} lines")
    return [check_line(line) for line in lines]


def _checked_period(period: tuple[date, date]) -> Period:
    start, end = period
    if end < start:
        raise Invalid(f"service period ends ({end}) before it starts ({start})")
    return Period(start, end)


def _checked_ref(payment_ref: str | None) -> str | None:
    if payment_ref is not None and not (0 < len(payment_ref) <= MAX_REF):
        raise Invalid(f"payment reference must hold 1 to {MAX_REF} characters")
    return payment_ref


def _existing(session: Session, kind: Kind, payment_ref: str | None) -> Invoice | None:
    if payment_ref is None:
        return None
    return session.execute(
        select(Invoice).where(Invoice.kind == kind, Invoice.payment_ref == payment_ref)
    ).scalar_one_or_none()


def _client_from_json(data: dict[str, Any]) -> ClientIdentity:
    return ClientIdentity(
        **{
            **data,
            "address_lines": tuple(data["address_lines"]),
            "customer_type": CustomerType(data["customer_type"]),
        }
    )


def _store(
    session: Session,
    *,
    tenant_id: str,
    number: Number,
    kind: Kind,
    due_on: date,
    period: Period,
    seller: SellerIdentity,
    client: ClientIdentity,
    lines: list[Line],
    totals: Totals,
    vat: VatTreatment,
    payment_ref: str | None,
    paid_on: date | None = None,
    credits: Invoice | None = None,
    reason: str | None = None,
) -> Invoice:
    """Renders the document and inserts it, in the transaction holding the number."""
    settings = get_settings()
    credited = CreditedInvoice(credits.number, paris_day(credits.issued_at)) if credits else None
    terms = (
        payment_terms(
            paid_on=paid_on,
            due_on=due_on,
            payment_days=settings.invoice_payment_days,
            payment_ref=payment_ref,
        )
        if kind is Kind.INVOICE
        else None
    )
    document = Document(
        kind=kind,
        number=number.text,
        issued_at=number.issued_at,
        due_on=due_on,
        period_start=period.start,
        period_end=period.end,
        seller=seller,
        client=client,
        lines=tuple(lines),
        totals=totals,
        vat_rate=vat.rate,
        vat_regime=vat.regime,
        mentions=mentions(
            kind=kind,
            client=client,
            due_on=due_on,
            terms=terms,
            vat_mention=vat.mention,
            late_penalty=settings.invoice_late_penalty,
            credits=credited,
            reason=reason,
        ),
        vat_mention=vat.mention,
        payment_terms=terms,
        payment_ref=payment_ref,
        credits=credited,
        reason=reason,
    )
    content = pdf.render(document, settings.invoice_font_dir)
    if client.is_business:
        content = facturx.embed(content, document)
    invoice = Invoice(
        id=uuid.uuid4(),
        number=number.text,
        series=number.series.value,
        year=number.year,
        sequence=number.sequence,
        kind=kind.value,
        credits_invoice_id=credits.id if credits else None,
        tenant_id=tenant_id,
        issued_at=number.issued_at,
        due_on=due_on,
        period_start=period.start,
        period_end=period.end,
        seller=seller.as_json(),
        client=client.as_json(),
        currency="EUR",
        total_ht_cents=totals.ht_cents,
        total_vat_cents=totals.vat_cents,
        total_ttc_cents=totals.ttc_cents,
        vat_rate=vat.rate,
        vat_regime=vat.regime.value,
        mentions="\n".join(document.mentions),
        reason=reason,
        payment_ref=payment_ref,
        facturx=client.is_business,
        pdf=content,
        lines=[
            InvoiceLine(
                position=position,
                description=line.description,
                quantity=line.quantity,
                unit_price_ht=line.unit_price_ht,
                line_ht_cents=cents,
                vat_rate=vat.rate,
            )
            for position, (line, cents) in enumerate(
                zip(lines, totals.line_ht_cents, strict=True), start=1
            )
        ],
    )
    session.add(invoice)
    session.flush()
    record(
        session,
        actor="billing",
        action=f"billing.{kind.value}.issued",
        tenant_id=tenant_id,
        target=number.text,
    )
    return invoice


def issue_invoice(
    session: Session,
    *,
    tenant_id: str,
    lines: Sequence[Line],
    period: tuple[date, date],
    client: ClientIdentity,
    payment_ref: str | None = None,
    paid_on: date | None = None,
) -> Invoice:
    """Issues an invoice numbered in series F, in the caller's transaction.

    With a `payment_ref` (the PayPal capture or sale id) the invoice is marked paid on
    `paid_on` (the payment's day in France), and issuing again for the same reference
    returns the invoice already issued.
    """
    if (payment_ref is None) != (paid_on is None):
        raise Invalid("a paid invoice needs both its payment reference and its payment day")
    checked_lines = _checked_lines(lines)
    checked_period = _checked_period(period)
    payment_ref = _checked_ref(payment_ref)
    checked_client = check_client(client)
    seller = seller_from_settings(get_settings())
    if session.get(Tenant, tenant_id) is None:
        raise NotFound(f"no tenant {tenant_id!r}")
    vat = treatment(checked_client)
    totals = compute(checked_lines, vat.rate)
    if totals.ht_cents <= 0:
        raise Invalid("an invoice must bill a positive amount")

    counter = lock_counter(session, Series.INVOICE)
    # Checked under the lock: a concurrent issue for the same payment has committed by now.
    existing = _existing(session, Kind.INVOICE, payment_ref)
    if existing is not None:
        if existing.tenant_id != tenant_id:
            raise Conflict(f"payment {payment_ref!r} is already invoiced to another client")
        return existing
    number = counter.take()
    issued_on = paris_day(number.issued_at)
    due_on = (
        issued_on
        if payment_ref
        else issued_on + timedelta(days=get_settings().invoice_payment_days)
    )
    return _store(
        session,
        tenant_id=tenant_id,
        number=number,
        kind=Kind.INVOICE,
        due_on=due_on,
        period=checked_period,
        seller=seller,
        client=checked_client,
        lines=checked_lines,
        totals=totals,
        vat=vat,
        payment_ref=payment_ref,
        paid_on=paid_on,
    )


def issue_credit_note(
    session: Session,
    *,
    invoice_id: uuid.UUID,
    reason: str,
    lines: Sequence[Line] | None = None,
    payment_ref: str | None = None,
    refunded_ttc_cents: int | None = None,
) -> Invoice:
    """Issues a credit note (series A) against an invoice: all of it when neither `lines`
    nor `refunded_ttc_cents` is given; with `refunded_ttc_cents`, one line crediting exactly
    that amount including tax (what PayPal gave back).

    The credited amounts never exceed the invoice's; `payment_ref` (the refund id) makes a
    repeated call return the credit note already issued.
    """
    if lines is not None and refunded_ttc_cents is not None:
        raise Invalid("a credit note credits either lines or a refunded amount, not both")
    reason = " ".join(reason.split())
    if not reason or len(reason) > MAX_REASON:
        raise Invalid(f"a credit note needs a reason of 1 to {MAX_REASON} characters")
    payment_ref = _checked_ref(payment_ref)
    seller = seller_from_settings(get_settings())
    counter = lock_counter(session, Series.CREDIT_NOTE)
    existing = _existing(session, Kind.CREDIT_NOTE, payment_ref)
    if existing is not None:
        if existing.credits_invoice_id != invoice_id:
            raise Conflict(f"refund {payment_ref!r} already credits another invoice")
        return existing
    original = session.get(Invoice, invoice_id)
    if original is None:
        raise NotFound(f"no invoice {invoice_id}")
    if original.kind != Kind.INVOICE:
        raise Invalid(f"{original.number} is a credit note: only invoices can be credited")
    client = _client_from_json(original.client)
    # Same client snapshot, same rules: the invoice's regime and mention, at its rate.
    vat = VatTreatment(VatRegime(original.vat_regime), original.vat_rate, treatment(client).mention)
    if refunded_ttc_cents is not None:
        line, totals = compute_from_gross(reason[:300], refunded_ttc_cents, vat.rate)
        credited_lines = [line]
    elif lines is None:
        credited_lines = [
            Line(line.description, line.quantity, line.unit_price_ht) for line in original.lines
        ]
        totals = compute(credited_lines, vat.rate)
    else:
        credited_lines = _checked_lines(lines)
        totals = compute(credited_lines, vat.rate)
    if totals.ht_cents <= 0:
        raise Invalid("a credit note must credit a positive amount")
    already = session.execute(
        select(func.coalesce(func.sum(Invoice.total_ttc_cents), 0)).where(
            Invoice.credits_invoice_id == original.id
        )
    ).scalar_one()
    if already + totals.ttc_cents > original.total_ttc_cents:
        raise Conflict(
            f"credit notes for {original.number} would exceed its total "
            f"({already + totals.ttc_cents} > {original.total_ttc_cents} cents)"
        )
    number = counter.take()
    return _store(
        session,
        tenant_id=original.tenant_id,
        number=number,
        kind=Kind.CREDIT_NOTE,
        due_on=paris_day(number.issued_at),
        period=Period(original.period_start, original.period_end),
        seller=seller,
        client=client,
        lines=credited_lines,
        totals=totals,
        vat=vat,
        payment_ref=payment_ref,
        credits=original,
        reason=reason,
    )


def list_invoices(session: Session, tenant_id: str) -> list[Invoice]:
    return list(
        session.execute(
            select(Invoice)
            .where(Invoice.tenant_id == tenant_id)
            .order_by(Invoice.issued_at.desc(), Invoice.number.desc())
        ).scalars()
    )


def invoice_pdf(session: Session, tenant_id: str, invoice_id: uuid.UUID) -> Invoice:
    """The tenant's invoice with its PDF loaded; another tenant's is not found."""
    invoice = session.execute(
        select(Invoice)
        .where(Invoice.id == invoice_id, Invoice.tenant_id == tenant_id)
        .options(undefer(Invoice.pdf))
    ).scalar_one_or_none()
    if invoice is None:
        raise NotFound(f"no invoice {invoice_id} in your account")
    return invoice


def issued_document(session: Session, number: str) -> Invoice:
    """An invoice or credit note by its number, with its PDF, whoever it is made out to: for
    the operator (the accountant, the documents of an erased account)."""
    invoice = session.execute(
        select(Invoice).where(Invoice.number == number).options(undefer(Invoice.pdf))
    ).scalar_one_or_none()
    if invoice is None:
        raise NotFound(f"no invoice or credit note numbered {number!r}")
    return invoice
