"""PayPal's REST API, the calls we make: OAuth2 token, catalog products, billing plans,
subscriptions, Invoicing v2.

Plain httpx rather than paypal-server-sdk: the SDK has no Invoicing API, its base URL is one
of two fixed environments (no stand-in, no proxy endpoint), it brings `requests` and untyped
models. Every POST carries a PayPal-Request-Id, so a retried call is not done twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from fta.errors import DomainError
from fta.settings import PLACEHOLDER_MARKERS

TIMEOUT_SECONDS = 20.0
# A token is renewed this long before PayPal says it expires.
TOKEN_MARGIN_SECONDS = 60.0


class PayPalUnavailable(DomainError):
    """PayPal could not be reached, refused our credentials, or is not configured."""

    status = 503
    title = "Payment provider unavailable"


class PayPalError(DomainError):
    """PayPal answered a call with an error."""

    status = 502
    title = "Payment provider error"

    def __init__(self, detail: str, http_status: int) -> None:
        super().__init__(detail)
        self.http_status = http_status


@dataclass(frozen=True)
class InvoiceLine:
    name: str
    quantity: Decimal
    unit_amount: Decimal  # excluding tax, in the invoice's currency
    tax_percent: Decimal


def money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": f"{amount.quantize(Decimal('0.01'))}"}


def draft_invoice_body(
    *,
    number: str,
    recipient_email: str,
    lines: list[InvoiceLine],
    currency: str = "EUR",
    note: str | None = None,
) -> dict[str, Any]:
    """An Invoicing v2 draft: our invoice number, one item per line, tax per item."""
    items = [
        {
            "name": line.name[:200],
            "quantity": str(line.quantity),
            "unit_amount": money(line.unit_amount, currency),
            "tax": {"name": "TVA", "percent": str(line.tax_percent)},
            "unit_of_measure": "QUANTITY",
        }
        for line in lines
    ]
    detail: dict[str, Any] = {"invoice_number": number, "currency_code": currency}
    if note:
        detail["note"] = note[:4000]
    return {
        "detail": detail,
        "primary_recipients": [{"billing_info": {"email_address": recipient_email}}],
        "items": items,
    }


class PayPalClient:
    """One PayPal REST app. Thread-safe: the token is shared and renewed under a lock."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = (client_id, client_secret)
        self._http = http or httpx.Client(timeout=TIMEOUT_SECONDS)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0

    @property
    def configured(self) -> bool:
        return not any(
            marker in value.lower() for value in self._credentials for marker in PLACEHOLDER_MARKERS
        )

    # --- transport ---

    def _access_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if not renew and self._token is not None and self._clock() < self._token_expires:
                return self._token
            if not self.configured:
                raise PayPalUnavailable(
                    "PayPal is not configured: set FTA_PAYPAL_CLIENT_ID and "
                    "FTA_PAYPAL_CLIENT_SECRET (see docs/billing.md)"
                )
            try:
                answer = self._http.post(
                    f"{self.base_url}/v1/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=self._credentials,
                    headers={"Accept": "application/json"},
                )
            except httpx.HTTPError as exc:
                raise PayPalUnavailable(f"PayPal is unreachable: {type(exc).__name__}") from exc
            if answer.status_code != 200:
                raise PayPalUnavailable(
                    f"PayPal refused our credentials (HTTP {answer.status_code}): check "
                    "FTA_PAYPAL_CLIENT_ID, FTA_PAYPAL_CLIENT_SECRET and FTA_PAYPAL_BASE_URL"
                )
            body = answer.json()
            self._token = str(body["access_token"])
            lifetime = float(body.get("expires_in", 0))
            self._token_expires = self._clock() + max(lifetime - TOKEN_MARGIN_SECONDS, 0.0)
            return self._token

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Prefer": "return=representation"}
        if request_id is not None:
            headers["PayPal-Request-Id"] = request_id
        answer = self._send(method, path, json, headers, renew=False)
        if answer.status_code == 401:  # the token was revoked or expired early
            answer = self._send(method, path, json, headers, renew=True)
        if answer.status_code >= 400:
            raise PayPalError(_describe(method, path, answer), answer.status_code)
        if not answer.content:
            return {}
        body = answer.json()
        if not isinstance(body, dict):
            raise PayPalError(f"PayPal answered {method} {path} with a non-object", 502)
        return body

    def _send(
        self,
        method: str,
        path: str,
        json: Mapping[str, Any] | None,
        headers: dict[str, str],
        *,
        renew: bool,
    ) -> httpx.Response:
        headers = {**headers, "Authorization": f"Bearer {self._access_token(renew=renew)}"}
        try:
            return self._http.request(method, f"{self.base_url}{path}", json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise PayPalUnavailable(f"PayPal is unreachable: {type(exc).__name__}") from exc

    # --- catalog ---

    def create_product(self, *, name: str, description: str, request_id: str) -> dict[str, Any]:
        body = {"name": name, "description": description, "type": "SERVICE"}
        return self._call("POST", "/v1/catalogs/products", json=body, request_id=request_id)

    def create_plan(
        self,
        *,
        product_id: str,
        name: str,
        price: Decimal,
        currency: str,
        tax_percent: Decimal,
        request_id: str,
    ) -> dict[str, Any]:
        """A monthly plan billed `price` (excluding tax) plus `tax_percent` on top."""
        body = {
            "product_id": product_id,
            "name": name,
            "status": "ACTIVE",
            "billing_cycles": [
                {
                    "frequency": {"interval_unit": "MONTH", "interval_count": 1},
                    "tenure_type": "REGULAR",
                    "sequence": 1,
                    "total_cycles": 0,
                    "pricing_scheme": {"fixed_price": money(price, currency)},
                }
            ],
            "payment_preferences": {
                "auto_bill_outstanding": True,
                "payment_failure_threshold": 3,
            },
            "taxes": {"percentage": str(tax_percent), "inclusive": False},
        }
        return self._call("POST", "/v1/billing/plans", json=body, request_id=request_id)

    def update_plan_price(
        self, plan_id: str, *, price: Decimal, currency: str, request_id: str
    ) -> None:
        """The monthly plan's new price (excluding tax), for new and current subscribers alike:
        PayPal e-mails the current ones and charges it from a cycle at least ten days on."""
        scheme = {"fixed_price": money(price, currency)}
        body = {"pricing_schemes": [{"billing_cycle_sequence": 1, "pricing_scheme": scheme}]}
        self._call(
            "POST",
            f"/v1/billing/plans/{_segment(plan_id)}/update-pricing-schemes",
            json=body,
            request_id=request_id,
        )

    def get_plan(self, plan_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/billing/plans/{_segment(plan_id)}")

    # --- subscriptions ---

    def create_subscription(
        self,
        *,
        plan_id: str,
        custom_id: str,
        return_url: str,
        cancel_url: str,
        request_id: str,
    ) -> dict[str, Any]:
        body = {
            "plan_id": plan_id,
            "custom_id": custom_id,
            "application_context": {
                "user_action": "SUBSCRIBE_NOW",
                "shipping_preference": "NO_SHIPPING",
                "return_url": return_url,
                "cancel_url": cancel_url,
            },
        }
        return self._call("POST", "/v1/billing/subscriptions", json=body, request_id=request_id)

    def get_subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/billing/subscriptions/{_segment(subscription_id)}")

    def cancel_subscription(self, subscription_id: str, *, reason: str) -> None:
        """Cancels an active or suspended subscription: PayPal bills it no more."""
        path = f"/v1/billing/subscriptions/{_segment(subscription_id)}/cancel"
        self._call("POST", path, json={"reason": reason[:127]})

    # --- Invoicing v2 ---

    def create_draft_invoice(self, body: Mapping[str, Any], *, request_id: str) -> str:
        """Creates a draft invoice (see `draft_invoice_body`); returns its PayPal id."""
        answer = self._call("POST", "/v2/invoicing/invoices", json=body, request_id=request_id)
        if "id" in answer:
            return str(answer["id"])
        # Without `Prefer: return=representation` honoured, PayPal answers a link only.
        return str(answer["href"]).rstrip("/").rsplit("/", 1)[-1]

    def send_invoice(self, invoice_id: str, *, request_id: str) -> None:
        body = {"send_to_recipient": True, "send_to_invoicer": False}
        path = f"/v2/invoicing/invoices/{_segment(invoice_id)}/send"
        self._call("POST", path, json=body, request_id=request_id)

    def get_invoice(self, invoice_id: str) -> dict[str, Any]:
        """The invoice; its `status` says DRAFT, SENT, PAID, PARTIALLY_PAID, CANCELLED..."""
        return self._call("GET", f"/v2/invoicing/invoices/{_segment(invoice_id)}")


def _segment(value: str) -> str:
    """An id placed in a path: PayPal's ids are letters, digits and dashes."""
    if not value or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        raise PayPalError(f"not a PayPal id: {value[:64]!r}", 400)
    return value


def _describe(method: str, path: str, answer: httpx.Response) -> str:
    name = message = ""
    try:
        body = answer.json()
        if isinstance(body, dict):
            name, message = str(body.get("name", "")), str(body.get("message", ""))
    except ValueError:
        pass
    reason = f"{name}: {message}" if name or message else "no details"
    return f"PayPal refused {method} {path} (HTTP {answer.status_code}, {reason[:300]})"
