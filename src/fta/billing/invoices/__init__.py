"""French invoices and credit notes: gapless numbering, VAT, PDF and Factur-X."""

from fta.billing.invoices.identity import ClientIdentity, CustomerType, client_from_tenant
from fta.billing.invoices.money import Line
from fta.billing.invoices.service import Period, issue_credit_note, issue_invoice

__all__ = [
    "ClientIdentity",
    "CustomerType",
    "Line",
    "Period",
    "client_from_tenant",
    "issue_credit_note",
    "issue_invoice",
]
