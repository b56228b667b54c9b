"""PayPal: the only code that talks to it (REST client, webhook verification) and its tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from fta.billing.paypal.client import PayPalClient
from fta.billing.paypal.webhooks import WebhookVerifier, paypal_trust
from fta.settings import get_settings


@dataclass(frozen=True)
class PayPal:
    """What the billing services need of PayPal: the API, the webhook check, and where the
    buyer's browser goes after approving or cancelling."""

    client: PayPalClient
    verifier: WebhookVerifier
    return_url: str
    cancel_url: str


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
    )
