"""PayPal: the only code that talks to it (REST client, webhook verification) and its tables."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from functools import lru_cache

from fta.billing.paypal.client import PayPalClient, PayPalError
from fta.billing.paypal.webhooks import WebhookVerifier, paypal_trust
from fta.settings import get_settings

__all__ = ["PayPal", "PayPalError", "paypal_from_settings"]

# The portal's pages a buyer who subscribed there comes back to from PayPal.
PAGE_RETURN_PATH = "/app/billing/return"
PAGE_CANCEL_PATH = "/app/billing/plans"


@dataclass(frozen=True)
class PayPal:
    """What the billing services need of PayPal: the API, the webhook check, and where the
    buyer's browser goes after approving or cancelling: for a subscription started through
    the API `return_url` (FTA_PAYPAL_RETURN_URL, the API's return path) and `cancel_url`; for
    one started on the portal's pages, those pages (under FTA_PUBLIC_URL)."""

    client: PayPalClient
    verifier: WebhookVerifier
    return_url: str
    cancel_url: str
    page_return_url: str
    page_cancel_url: str

    def for_pages(self) -> PayPal:
        """The same PayPal, sending the buyer back to the portal's pages."""
        return replace(self, return_url=self.page_return_url, cancel_url=self.page_cancel_url)


@lru_cache(maxsize=1)
def paypal_from_settings() -> PayPal:
    settings = get_settings()
    return PayPal(
        client=PayPalClient(
            settings.paypal_base_url,
            settings.paypal_client_id.get_secret_value(),
            settings.paypal_client_secret.get_secret_value(),
        ),
        verifier=WebhookVerifier(
            settings.paypal_webhook_id,
            paypal_trust(settings.paypal_cert_roots),
            max_age=timedelta(hours=settings.paypal_webhook_max_age_hours),
        ),
        return_url=settings.paypal_return_url,
        cancel_url=settings.paypal_cancel_url,
        page_return_url=settings.public_url.rstrip("/") + PAGE_RETURN_PATH,
        page_cancel_url=settings.public_url.rstrip("/") + PAGE_CANCEL_PATH,
    )
