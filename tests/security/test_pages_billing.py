"""The billing pages: another client's invoice or subscription is a page that does not
exist, no form is taken without this browser's CSRF token, and markup typed in the billing
identity stays text on the pages and on the invoices."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.accounts.models import Tenant
from fta.billing.invoices import Line, Period, issue_invoice
from fta.billing.invoices.identity import client_from_tenant
from fta.billing.invoices.models import Invoice
from fta.billing.paypal.models import Subscription
from fta.db import session_scope, utcnow
from tests.support.api import sign_up
from tests.support.browser import LivePortal
from tests.support.invoices import issue_test_invoice
from tests.support.page_client import form_token, logged_in, page_client

PAYLOAD = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
IDENTITY = {
    "customer_type": "private",
    "legal_name": "Camille Martin",
    "address_line1": "1 rue de la Paix",
    "postcode": "75002",
    "city": "Paris",
    "country": "FR",
}


def _pending_subscription(tenant_id: str) -> str:
    """A subscription row as starting one leaves it (its PayPal id made up)."""
    paypal_id = f"I-{uuid.uuid4().hex[:12].upper()}"
    now = utcnow()
    with session_scope() as session:
        session.add(
            Subscription(
                tenant_id=tenant_id,
                paypal_subscription_id=paypal_id,
                plan_code="pro",
                price_ht_cents=7900,
                tax_percent=Decimal("20.00"),
                status="pending",
                paypal_status="APPROVAL_PENDING",
                last_state={"id": paypal_id, "status": "APPROVAL_PENDING"},
                created_at=now,
                updated_at=now,
            )
        )
    return paypal_id


def test_another_clients_invoice_and_subscription_are_not_found(
    http: TestClient, live_portal: LivePortal
) -> None:
    alice, bob = sign_up(http, "Alice"), sign_up(http, "Bob")
    secret = issue_test_invoice(alice.tenant_id)
    alices_subscription = _pending_subscription(alice.tenant_id)
    own = issue_test_invoice(bob.tenant_id)
    with logged_in(live_portal, bob.email, bob.password) as browser:
        mine = browser.get(f"/app/billing/invoices/{own}.pdf")
        assert mine.status_code == 200 and mine.content.startswith(b"%PDF-")
        assert mine.headers["content-type"] == "application/pdf"
        assert mine.headers["cache-control"] == "private, no-store"
        listing = browser.get("/app/billing/invoices")
        assert own in listing.text and secret not in listing.text
        for path in (
            f"/app/billing/invoices/{secret}.pdf",
            f"/app/billing/invoices/{uuid.uuid4()}.pdf",
            f"/app/billing/return?subscription_id={alices_subscription}",
        ):
            answer = browser.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.headers["content-type"].startswith("text/html")
            assert b"%PDF" not in answer.content
    # A stranger is sent to log in, and gets no PDF.
    with page_client(live_portal) as stranger:
        answer = stranger.get(f"/app/billing/invoices/{own}.pdf")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?")


def test_the_billing_forms_need_this_browsers_token(
    http: TestClient, live_portal: LivePortal
) -> None:
    client = sign_up(http, "Forms")
    forms = {
        "/app/billing/identity": IDENTITY,
        "/app/billing/spending-cap": {"cap": "12"},
        "/app/billing/plans": {"plan": "pro"},
    }
    with logged_in(live_portal, client.email, client.password) as browser:
        token = form_token(browser, "/app/billing")
        with page_client(live_portal) as other:
            foreign = form_token(other, "/login")
        for path, form in forms.items():
            for data, headers in [
                (form, {}),
                ({**form, "csrf_token": "0" * 64}, {}),
                ({**form, "csrf_token": foreign}, {}),
                ({**form, "csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
            ]:
                refused = browser.post(path, data=data, headers=headers)
                assert refused.status_code == 403, (path, refused.text)
                assert refused.headers["content-type"].startswith("text/html")
        # Nothing was saved or started.
        with session_scope() as session:
            tenant = session.get_one(Tenant, client.tenant_id)
            assert tenant.legal_name is None
            assert not session.scalars(
                select(Subscription).where(Subscription.tenant_id == client.tenant_id)
            ).all()
        assert "12,00" not in browser.get("/app/billing").text
        # With the token, the same form goes through.
        saved = browser.post("/app/billing/spending-cap", data={"cap": "12", "csrf_token": token})
        assert saved.status_code == 303, saved.text
        assert "12,00" in browser.get("/app/billing").text


def test_markup_in_the_legal_name_stays_text_on_the_pages_and_the_invoices(
    http: TestClient, live_portal: LivePortal
) -> None:
    client = sign_up(http, "Markup")
    with logged_in(live_portal, client.email, client.password) as browser:
        token = form_token(browser, "/app/billing/identity")
        saved = browser.post(
            "/app/billing/identity", data={**IDENTITY, "legal_name": PAYLOAD, "csrf_token": token}
        )
        assert saved.status_code == 303, saved.text
        # Sent back with an error, the typed name is kept, as text.
        refused = browser.post(
            "/app/billing/identity",
            data={**IDENTITY, "legal_name": PAYLOAD, "postcode": "", "csrf_token": token},
        )
        for page in (browser.get("/app/billing/identity"), refused):
            assert "<script>alert(1)</script>" not in page.text
            assert "<img src=x" not in page.text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert refused.status_code == 400
        assert 'aria-invalid="true"' in refused.text

    # The invoice is made out to the name exactly as typed, and reads as text too.
    with session_scope() as session:
        tenant = session.get_one(Tenant, client.tenant_id)
        assert tenant.legal_name == PAYLOAD
        invoice = issue_invoice(
            session,
            tenant_id=client.tenant_id,
            lines=[Line("Abonnement Pro", Decimal(1), Decimal("79"))],
            period=Period(date(2026, 11, 1), date(2026, 11, 30)),
            client=client_from_tenant(tenant),
        )
        invoice_id = invoice.id
    with session_scope() as session:
        stored = session.get_one(Invoice, invoice_id)
        assert stored.client["name"] == PAYLOAD
        assert (stored.total_ht_cents, stored.total_vat_cents, stored.total_ttc_cents) == (
            7900,
            1580,
            9480,
        )
    with logged_in(live_portal, client.email, client.password) as browser:
        listing = browser.get("/app/billing/invoices")
        assert "79,00\xa0€" in listing.text and "94,80\xa0€" in listing.text
        assert "15,80\xa0€" in listing.text
        pdf = browser.get(f"/app/billing/invoices/{invoice_id}.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
