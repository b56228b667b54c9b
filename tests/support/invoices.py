"""An invoice issued straight through the service, for tests that need one to exist."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fta.billing.invoices import ClientIdentity, Line, Period, issue_invoice
from fta.db import session_scope


def issue_test_invoice(tenant_id: str) -> str:
    """A paid invoice to a private client in France; returns its id."""
    client = ClientIdentity(
        name="Test Client",
        address_lines=("1 rue de la Paix",),
        postcode="75002",
        city="Paris",
        country="FR",
    )
    with session_scope() as session:
        invoice = issue_invoice(
            session,
            tenant_id=tenant_id,
            lines=[Line("Abonnement", Decimal(1), Decimal("10"))],
            period=Period(date(2026, 11, 1), date(2026, 11, 30)),
            client=client,
        )
        return str(invoice.id)
