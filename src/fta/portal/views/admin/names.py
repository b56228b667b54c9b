"""The console's pages name statuses, kinds and states as the client's pages do, in the
operator's language, rather than by their codes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fta.accounts.models import TenantStatus
from fta.billing.invoices.models import Kind as InvoiceKind
from fta.billing.paypal.models import SubscriptionStatus
from fta.portal.views import bots as bot_pages
from fta.portal.views import jobs as job_pages
from fta.portal.views.jobs import Gettext
from fta.web import pages


def names(_: Gettext) -> dict[str, dict[str, str]]:
    def keyed(found: Mapping[str, str]) -> dict[str, str]:
        return {str(code): name for code, name in found.items()}

    return {
        "kind_names": keyed(job_pages.kind_names(_)),
        "status_names": keyed(job_pages.status_names(_)),
        "state_names": keyed(bot_pages.state_names(_)),
        "account_statuses": {
            TenantStatus.ACTIVE.value: _("Active"),
            TenantStatus.SUSPENDED.value: _("Suspended"),
            TenantStatus.ERASING.value: _("Being erased"),
            TenantStatus.ERASED.value: _("Erased"),
        },
        "subscription_statuses": {
            SubscriptionStatus.PENDING.value: _("Waiting for the client's approval on PayPal"),
            SubscriptionStatus.ACTIVE.value: _("Active"),
            SubscriptionStatus.PAST_DUE.value: _("Payment failed"),
            SubscriptionStatus.CANCELLED.value: _("Subscription cancelled"),
        },
        "invoice_kinds": {
            InvoiceKind.INVOICE.value: _("Invoice"),
            InvoiceKind.CREDIT_NOTE.value: _("Credit note"),
        },
    }


def render(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> Response:
    """A console page, with the names of codes in the operator's language."""
    return pages.render(
        request,
        template,
        {**names(pages.gettext_for(request)), **context},
        status_code=status_code,
    )
