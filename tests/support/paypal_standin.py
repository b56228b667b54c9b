"""A stand-in for PayPal's REST API on 127.0.0.1, over TLS from a CA made at start.

It serves the calls fta makes (OAuth2 token, catalog products, billing plans, subscriptions,
Invoicing v2), the buyer's approval page (which activates the subscription and redirects to
the return URL, as PayPal does), and webhook signing certificates where PayPal serves them,
/v1/notifications/certs/CERT-<name>: the signer's certificate (issued to PayPal's
messageverificationcerts name by an intermediate of the stand-in's CA) then the intermediate.
`send_webhook` signs an event the way PayPal does (RSA-SHA256 over transmission id, time,
webhook id and the body's CRC32) and POSTs it, so the real verification code runs;
`certificate_trust()` is the verifier configuration that accepts the stand-in's certificates.
Tests only: never part of an image.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from fta.billing.paypal import PAGE_CANCEL_PATH, PAGE_RETURN_PATH, PayPal
from fta.billing.paypal.client import PayPalClient
from fta.billing.paypal.webhooks import CERT_PATH_PREFIX, CertificateTrust, WebhookVerifier

JSON = dict[str, Any]
Answer = tuple[int, JSON | None, dict[str, str]]
SIGNER_NAME = "messageverificationcerts.paypal.com"
# A plan's new price reaches its current subscribers on their first cycle this long after.
PRICE_NOTICE = dt.timedelta(days=10)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    subject: str,
    key: rsa.RSAPrivateKey,
    ca_key: rsa.RSAPrivateKey,
    ca_name: x509.Name,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca: bool = False,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if ca:
        # What a CA certificate carries for chain validation to accept it as an issuer.
        usage = dict.fromkeys(
            ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment"),
            False,
        )
        builder = builder.add_extension(
            x509.KeyUsage(
                **usage,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class Signer:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True)
class Seen:
    method: str
    path: str


class PayPalStandin:
    """PayPal's REST API for one app (client id and secret) and one webhook id.

    By default on 127.0.0.1 and a free port. A stack's services reach it under PayPal's own
    names instead (`names`, resolved to `address` in their containers, on https's port): its
    certificates are then issued to those names, and it listens once `address` exists."""

    def __init__(
        self,
        *,
        webhook_id: str = "WH-STANDIN",
        address: str = "127.0.0.1",
        port: int = 0,
        names: tuple[str, ...] = ("127.0.0.1", "localhost"),
    ) -> None:
        self._address, self._names = address, names
        self.client_id = f"standin-client-{secrets.token_hex(4)}"
        self.client_secret = secrets.token_urlsafe(24)
        self.webhook_id = webhook_id
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._tokens: set[str] = set()
        self._by_request_id: dict[tuple[str, str], JSON] = {}
        self.products: dict[str, JSON] = {}
        self.plans: dict[str, JSON] = {}
        self.subscriptions: dict[str, JSON] = {}
        self.invoices: dict[str, JSON] = {}
        # Each plan's price changes: when, and the price (excluding tax) before it.
        self.price_changes: dict[str, list[tuple[dt.datetime, Decimal]]] = {}
        # Invoice recipients PayPal refuses (an address it cannot bill, say).
        self.refused_recipients: set[str] = set()
        # Paths PayPal answers 503 on, as during an outage, while they are here.
        self.outage: set[str] = set()

        now = dt.datetime.now(dt.UTC)
        day = dt.timedelta(days=1)
        ca_key = _key()
        ca_name = _name("fta test PayPal CA")
        ca = _issue(
            "fta test PayPal CA",
            ca_key,
            ca_key,
            ca_name,
            not_before=now - day,
            not_after=now + day,
            ca=True,
        )
        self.ca_pem = _pem(ca)
        server_key = _key()
        server_cert = _issue(
            names[0],
            server_key,
            ca_key,
            ca_name,
            not_before=now - day,
            not_after=now + day,
            hosts=names,
        )
        # PayPal's signers are issued by an intermediate, which the certificate URL serves.
        intermediate_key = _key()
        intermediate_name = _name("fta test PayPal signing CA")
        self.intermediate = _issue(
            "fta test PayPal signing CA",
            intermediate_key,
            ca_key,
            ca_name,
            not_before=now - day,
            not_after=now + day,
            ca=True,
        )
        # "misnamed" is issued to another name, "untrusted" by a CA nobody trusts.
        stranger_key = _key()
        self.signers: dict[str, Signer] = {}
        for name, subject, issuer_key, start, end in (
            ("signing", SIGNER_NAME, intermediate_key, now - day, now + day),
            ("expired", SIGNER_NAME, intermediate_key, now - 3 * day, now - 2 * day),
            ("misnamed", "www.paypal.com", intermediate_key, now - day, now + day),
            ("untrusted", SIGNER_NAME, stranger_key, now - day, now + day),
        ):
            key = _key()
            cert = _issue(
                subject,
                key,
                issuer_key,
                intermediate_name,
                not_before=start,
                not_after=end,
                hosts=(subject,),
            )
            self.signers[name] = Signer(key, cert)

        self._dir = tempfile.TemporaryDirectory(prefix="paypal-standin-")
        cert_file, key_file = Path(self._dir.name, "server.pem"), Path(self._dir.name, "key.pem")
        cert_file.write_bytes(_pem(server_cert) + self.ca_pem)
        key_file.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://{self._host_and_port(self._names[0])}"

    def _host_and_port(self, host: str) -> str:
        return host if self.port == 443 else f"{host}:{self.port}"

    def __enter__(self) -> PayPalStandin:
        self._server = ThreadingHTTPServer((self._address, self._requested_port), self._handler())
        self._server.daemon_threads = True
        self._server.socket = self._context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
        self._dir.cleanup()

    def http_client(self) -> httpx.Client:
        """An HTTP client that trusts this stand-in's CA (and nothing else)."""
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        return httpx.Client(verify=context, timeout=10)

    def seen(self, prefix: str = "/") -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if s.path.startswith(prefix)]

    # --- what a buyer or PayPal's back office would do ---

    def set_subscription(self, subscription_id: str, status: str, *, failed: int = 0) -> None:
        with self._lock:
            subscription = self.subscriptions[subscription_id]
            subscription["status"] = status
            subscription["billing_info"]["failed_payments_count"] = failed

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def cycle_amount(self, subscription_id: str, paid_at: dt.datetime) -> Decimal:
        """What PayPal collects for the subscription's cycle billed at `paid_at`: its plan's
        price plus the plan's tax. A new price reaches current subscribers only on a cycle at
        least ten days after the change (PayPal e-mails them first)."""
        with self._lock:
            plan = self.plans[self.subscriptions[subscription_id]["plan_id"]]
            price = Decimal(plan["billing_cycles"][0]["pricing_scheme"]["fixed_price"]["value"])
            for changed_at, before in reversed(self.price_changes.get(plan["id"], [])):
                if paid_at - changed_at < PRICE_NOTICE:
                    price = before
            tax = Decimal(plan["taxes"]["percentage"])
        return (price * (1 + tax / 100)).quantize(Decimal("0.01"), ROUND_HALF_UP)

    def record_payment(self, subscription_id: str, paid_at: dt.datetime) -> None:
        """A cycle paid at `paid_at`: PayPal shows it as the last payment, and bills next a
        month later."""
        amount = self.cycle_amount(subscription_id, paid_at)
        with self._lock:
            subscription = self.subscriptions[subscription_id]
            billing = subscription["billing_info"]
            billing["last_payment"] = {
                "amount": {"currency_code": "EUR", "value": f"{amount}"},
                "time": paid_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            year, month = divmod(paid_at.month, 12)
            following = paid_at.replace(year=paid_at.year + year, month=month + 1, day=1)
            next_time = following.replace(day=min(paid_at.day, 28))
            billing["next_billing_time"] = next_time.strftime("%Y-%m-%dT%H:%M:%SZ")

    def cycle_paid(self, subscription_id: str, paid_at: dt.datetime) -> JSON:
        """PayPal collects a month of the subscription's plan at `paid_at` (`cycle_amount`):
        recorded on the subscription, and the PAYMENT.SALE.COMPLETED event PayPal then sends
        (unsigned)."""
        self.record_payment(subscription_id, paid_at)
        amount = self.cycle_amount(subscription_id, paid_at)
        sale = {
            "id": f"S-{secrets.token_hex(6).upper()}",
            "state": "completed",
            "amount": {"total": f"{amount}", "currency": "EUR"},
            "billing_agreement_id": subscription_id,
            "create_time": paid_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return self.event("PAYMENT.SALE.COMPLETED", sale)

    def mark_invoice_paid(self, invoice_id: str, paid_on: dt.date | None = None) -> None:
        """The client pays the invoice through PayPal, on `paid_on` (today by default)."""
        with self._lock:
            invoice = self.invoices[invoice_id]
            invoice["status"] = "PAID"
            invoice["payments"] = {
                "transactions": [
                    {
                        "payment_id": self._new_id(""),
                        "payment_date": (paid_on or dt.datetime.now(dt.UTC).date()).isoformat(),
                        "method": "PAYPAL",
                        "type": "PAYPAL",
                    }
                ]
            }

    def approve(self, approval_url: str) -> str:
        """The buyer approves on PayPal's page at `approval_url` (the subscription's approve
        link); returns where PayPal then sends the browser."""
        status, _, headers = self._approve(parse_qs(urlsplit(approval_url).query)["ba_token"][0])
        assert status == 302, approval_url
        return headers["Location"]

    # --- webhooks ---

    def cert_url(self, name: str = "signing", host: str = "127.0.0.1") -> str:
        return f"https://{self._host_and_port(host)}{CERT_PATH_PREFIX}CERT-{name}"

    def facade(
        self,
        return_url: str = "https://fta.example.test/api/v1/billing/return",
        *,
        portal_url: str = "https://fta.example.test",
    ) -> PayPal:
        """Our PayPal client and webhook verifier, both pointed at this stand-in; buyers who
        subscribed on the pages come back to those of `portal_url`."""
        http = self.http_client()
        return PayPal(
            client=PayPalClient(self.url, self.client_id, self.client_secret, http=http),
            verifier=WebhookVerifier(self.webhook_id, self.certificate_trust(), http=http),
            return_url=return_url,
            cancel_url="https://fta.example.test/",
            page_return_url=portal_url + PAGE_RETURN_PATH,
            page_cancel_url=portal_url + PAGE_CANCEL_PATH,
        )

    def certificate_trust(self) -> CertificateTrust:
        """What a verifier is configured with to accept this stand-in's signing certificates:
        its host and port, and its CA as the only root."""
        ca = x509.load_pem_x509_certificate(self.ca_pem)
        return CertificateTrust(frozenset({f"127.0.0.1:{self.port}"}), (ca,))

    def signed_headers(
        self,
        body: bytes,
        *,
        signer: str = "signing",
        cert_url: str | None = None,
        webhook_id: str | None = None,
        algo: str = "SHA256withRSA",
        sent_at: dt.datetime | None = None,
    ) -> dict[str, str]:
        """PayPal's headers for `body`; `sent_at` is the transmission time (now by default)."""
        transmission_id = secrets.token_hex(16)
        when = (sent_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = f"{transmission_id}|{when}|{webhook_id or self.webhook_id}|{zlib.crc32(body)}"
        signature = self.signers[signer].key.sign(
            message.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return {
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": when,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
            "PAYPAL-CERT-URL": cert_url or self.cert_url(signer),
            "PAYPAL-AUTH-ALGO": algo,
            "content-type": "application/json",
        }

    def send_webhook(
        self, target: TestClient | str, event: JSON | bytes, **signing: Any
    ) -> httpx.Response:
        """Signs `event` like PayPal and POSTs it to /webhooks/paypal of `target` (a test
        client of the app, or the base URL of a running portal)."""
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        headers = self.signed_headers(body, **signing)
        if isinstance(target, TestClient):
            return target.post("/webhooks/paypal", content=body, headers=headers)
        return httpx.post(f"{target}/webhooks/paypal", content=body, headers=headers)

    def event(self, event_type: str, resource: JSON) -> JSON:
        return {
            "id": f"WH-{secrets.token_hex(8).upper()}",
            "event_version": "1.0",
            "create_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "resource_type": event_type.split(".")[1].lower(),
            "event_type": event_type,
            "resource": resource,
        }

    # --- the API ---

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{secrets.token_hex(8).upper()}"

    def _created(
        self, kind: str, request_id: str | None, make: Callable[[JSON], JSON], payload: JSON
    ) -> Answer:
        """PayPal-Request-Id makes a POST idempotent: the same id answers the same object."""
        with self._lock:
            if request_id and (kind, request_id) in self._by_request_id:
                return 201, self._by_request_id[(kind, request_id)], {}
            try:
                created = make(payload)
            except KeyError as missing:
                return 400, {"name": "INVALID_REQUEST", "message": f"bad {missing}"}, {}
            if request_id:
                self._by_request_id[(kind, request_id)] = created
        return 201, created, {}

    def _answer(self, method: str, raw_path: str, headers: Any, body: bytes) -> Answer:
        parts = urlsplit(raw_path)
        path = parts.path
        with self._lock:
            self._seen.append(Seen(method, path))
        if method == "GET" and path.startswith(f"{CERT_PATH_PREFIX}CERT-"):
            name = path.removeprefix(f"{CERT_PATH_PREFIX}CERT-")
            if name not in self.signers:
                return 404, {"name": "RESOURCE_NOT_FOUND"}, {}
            chain = _pem(self.signers[name].certificate) + _pem(self.intermediate)
            return 200, {"pem": chain.decode()}, {}
        if method == "GET" and path == "/webapps/billing/subscriptions":
            return self._approve(parse_qs(parts.query).get("ba_token", [""])[0])
        if path == "/v1/oauth2/token" and method == "POST":
            return self._token(headers.get("Authorization", ""), body)
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            if token not in self._tokens:
                return 401, {"error": "invalid_token"}, {}
            if path in self.outage:
                return 503, {"name": "SERVICE_UNAVAILABLE", "message": "try again later"}, {}
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return 400, {"name": "MALFORMED_REQUEST"}, {}
        request_id = headers.get("PayPal-Request-Id")
        return self._route(method, path, payload, request_id)

    def _token(self, authorization: str, body: bytes) -> Answer:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if authorization != f"Basic {expected}" or b"grant_type=client_credentials" not in body:
            return 401, {"error": "invalid_client"}, {}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 32400}, {}

    def _route(self, method: str, path: str, payload: JSON, request_id: str | None) -> Answer:
        segments = path.strip("/").split("/")
        collections = {
            "/v1/catalogs/products": self.products,
            "/v1/billing/plans": self.plans,
            "/v1/billing/subscriptions": self.subscriptions,
            "/v2/invoicing/invoices": self.invoices,
        }
        if method == "POST" and path in collections:
            maker = {
                "/v1/catalogs/products": self._product,
                "/v1/billing/plans": self._plan,
                "/v1/billing/subscriptions": self._subscription,
                "/v2/invoicing/invoices": self._invoice,
            }[path]
            return self._created(path, request_id, maker, payload)
        if method == "GET" and path in collections:
            with self._lock:
                items = list(collections[path].values())
            return 200, {"items": items, "total_items": len(items)}, {}
        collection = "/" + "/".join(segments[:3])
        if collection in collections and len(segments) >= 4:
            with self._lock:
                item = collections[collection].get(segments[3])
            if item is None:
                return 404, {"name": "RESOURCE_NOT_FOUND", "message": "no such object"}, {}
            if method == "GET" and len(segments) == 4:
                return 200, item, {}
            if method == "POST" and segments[4:] == ["cancel"] and collection.startswith("/v1"):
                return self._cancel(item, payload)
            if method == "POST" and segments[4:] == ["update-pricing-schemes"]:
                return self._reprice(item, payload)
            if method == "POST" and segments[4:] == ["send"] and collection.startswith("/v2"):
                with self._lock:
                    if item["status"] != "DRAFT":
                        return 422, {"name": "UNPROCESSABLE_ENTITY"}, {}
                    item["status"] = "SENT"
                return 200, {"href": f"{self.url}{collection}/{item['id']}"}, {}
        return 404, {"name": "RESOURCE_NOT_FOUND", "message": f"{method} {path}"}, {}

    def _product(self, payload: JSON) -> JSON:
        product = {"id": self._new_id("PROD-"), "name": payload["name"], "type": payload["type"]}
        self.products[product["id"]] = product
        return product

    def _plan(self, payload: JSON) -> JSON:
        if payload["product_id"] not in self.products:
            raise KeyError("product_id")
        plan = {**payload, "id": self._new_id("P-"), "status": "ACTIVE"}
        self.plans[plan["id"]] = plan
        return plan

    def _subscription(self, payload: JSON) -> JSON:
        if payload["plan_id"] not in self.plans:
            raise KeyError("plan_id")
        subscription_id = self._new_id("I-")
        token = self._new_id("BA-")
        subscription = {
            "id": subscription_id,
            "plan_id": payload["plan_id"],
            "custom_id": payload.get("custom_id"),
            "status": "APPROVAL_PENDING",
            "billing_info": {"failed_payments_count": 0},
            "application_context": payload["application_context"],
            "ba_token": token,
            "links": [
                {
                    "href": f"{self.url}/webapps/billing/subscriptions?ba_token={token}",
                    "rel": "approve",
                    "method": "GET",
                },
                {"href": f"{self.url}/v1/billing/subscriptions/{subscription_id}", "rel": "self"},
            ],
        }
        self.subscriptions[subscription_id] = subscription
        return subscription

    def _invoice(self, payload: JSON) -> JSON:
        invoice = {**payload, "id": self._new_id("INV2-"), "status": "DRAFT"}
        if not payload["detail"].get("invoice_number"):
            raise KeyError("detail.invoice_number")
        for recipient in payload["primary_recipients"]:
            if recipient["billing_info"]["email_address"] in self.refused_recipients:
                raise KeyError("primary_recipients.billing_info.email_address")
        self.invoices[invoice["id"]] = invoice
        return invoice

    def _cancel(self, subscription: JSON, payload: JSON) -> Answer:
        """Cancels an active or suspended subscription, as PayPal does (204); any other is
        refused with PayPal's 422."""
        with self._lock:
            if subscription["status"] not in ("ACTIVE", "SUSPENDED"):
                issue = {"issue": "SUBSCRIPTION_STATUS_INVALID"}
                return 422, {"name": "UNPROCESSABLE_ENTITY", "details": [issue]}, {}
            subscription["status"] = "CANCELLED"
            subscription["status_change_note"] = str(payload.get("reason", ""))
        return 204, None, {}

    def _reprice(self, plan: JSON, payload: JSON) -> Answer:
        """A plan's new price for its billing cycle (204), as PayPal's update-pricing-schemes;
        a cycle the plan does not have, or a malformed price, gets PayPal's 422."""
        try:
            (scheme,) = payload["pricing_schemes"]
            sequence = scheme["billing_cycle_sequence"]
            fixed = scheme["pricing_scheme"]["fixed_price"]
            price = Decimal(fixed["value"])
            currency = fixed["currency_code"]
        except (KeyError, TypeError, ValueError, ArithmeticError):
            return 422, {"name": "UNPROCESSABLE_ENTITY", "message": "malformed pricing"}, {}
        with self._lock:
            cycles = [c for c in plan.get("billing_cycles", []) if c["sequence"] == sequence]
            if plan.get("status") != "ACTIVE" or not cycles:
                return 422, {"name": "UNPROCESSABLE_ENTITY", "message": "no such cycle"}, {}
            current = cycles[0]["pricing_scheme"]["fixed_price"]
            if currency != current["currency_code"]:
                return 422, {"name": "UNPROCESSABLE_ENTITY", "message": "currency"}, {}
            before = Decimal(current["value"])
            cycles[0]["pricing_scheme"]["fixed_price"] = {**fixed, "value": f"{price}"}
            changes = self.price_changes.setdefault(plan["id"], [])
            changes.append((dt.datetime.now(dt.UTC), before))
        return 204, None, {}

    def _approve(self, token: str) -> Answer:
        """The buyer approves: the subscription turns ACTIVE and PayPal redirects back."""
        with self._lock:
            found = [s for s in self.subscriptions.values() if s["ba_token"] == token]
            if not found:
                return 404, {"name": "RESOURCE_NOT_FOUND"}, {}
            subscription = found[0]
            subscription["status"] = "ACTIVE"
            query = urlencode({"subscription_id": subscription["id"], "ba_token": token})
            location = f"{subscription['application_context']['return_url']}?{query}"
        return 302, None, {"Location": location}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer, extra = standin._answer(method, self.path, self.headers, body)
                if answer is not None and set(answer) == {"pem"}:
                    data, content_type = answer["pem"].encode(), "application/x-pem-file"
                else:
                    data = b"" if answer is None else json.dumps(answer).encode()
                    content_type = "application/json"
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
