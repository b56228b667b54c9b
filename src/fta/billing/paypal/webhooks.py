"""Verifies PayPal webhook signatures by PayPal's certificate method, offline.

PayPal signs `transmission_id|transmission_time|webhook_id|crc32(raw body)` with RSA-SHA256
and names, in PAYPAL-CERT-URL, where its certificate is. That URL arrives with the request,
so it is attacker-controlled: it is fetched only over https from the allowed host (PayPal's
by default), never following redirects, and the certificate must be within its validity.
"""

from __future__ import annotations

import base64
import binascii
import threading
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fta.db import utcnow

ALGORITHM = "SHA256withRSA"
CERT_MAX_BYTES = 64 * 1024
FETCH_TIMEOUT_SECONDS = 10.0
HEADERS = (
    "paypal-transmission-id",
    "paypal-transmission-time",
    "paypal-transmission-sig",
    "paypal-cert-url",
    "paypal-auth-algo",
)


class WebhookRefused(Exception):
    """The delivery is not provably PayPal's; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def host_allowed(host: str, allowed: str) -> bool:
    """`*.example.com` matches any subdomain of example.com (not itself); else exact match."""
    host, allowed = host.lower().rstrip("."), allowed.lower()
    if allowed.startswith("*."):
        return host.endswith(allowed[1:])
    return host == allowed


def signed_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


class WebhookVerifier:
    """Checks deliveries for one webhook id. Certificates are cached by URL."""

    def __init__(
        self,
        webhook_id: str,
        allowed_cert_host: str,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.webhook_id = webhook_id
        self.allowed_cert_host = allowed_cert_host
        self._http = http or httpx.Client(timeout=FETCH_TIMEOUT_SECONDS)
        self._clock = clock
        self._lock = threading.Lock()
        self._certs: dict[str, x509.Certificate] = {}

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Returns if the delivery is authentic, else raises WebhookRefused."""
        values = {name: headers.get(name, "").strip() for name in HEADERS}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise WebhookRefused(f"missing header {missing[0]}")
        if values["paypal-auth-algo"] != ALGORITHM:
            raise WebhookRefused(f"unsupported PAYPAL-AUTH-ALGO, only {ALGORITHM} is accepted")
        try:
            signature = base64.b64decode(values["paypal-transmission-sig"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WebhookRefused("PAYPAL-TRANSMISSION-SIG is not base64") from exc
        certificate = self._certificate(values["paypal-cert-url"])
        now = self._clock()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise WebhookRefused("the signing certificate is expired or not yet valid")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRefused("the signing certificate does not hold an RSA key")
        message = signed_message(
            values["paypal-transmission-id"],
            values["paypal-transmission-time"],
            self.webhook_id,
            body,
        )
        try:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise WebhookRefused("the signature does not match the body and headers") from exc

    def _certificate(self, url: str) -> x509.Certificate:
        parts = urlsplit(url)
        try:
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as exc:
            raise WebhookRefused("PAYPAL-CERT-URL is malformed") from exc
        if parts.scheme != "https" or parts.username is not None or parts.password is not None:
            raise WebhookRefused("PAYPAL-CERT-URL must be a plain https URL")
        if not host_allowed(host, self.allowed_cert_host):
            raise WebhookRefused(f"PAYPAL-CERT-URL is not on {self.allowed_cert_host}")
        with self._lock:
            cached = self._certs.get(url)
        if cached is not None:
            return cached
        certificate = self._fetch(url)
        with self._lock:
            self._certs[url] = certificate
        return certificate

    def _fetch(self, url: str) -> x509.Certificate:
        try:
            with self._http.stream("GET", url, follow_redirects=False) as answer:
                if answer.status_code != 200:
                    raise WebhookRefused(f"the certificate URL answered HTTP {answer.status_code}")
                data = b""
                for chunk in answer.iter_bytes():
                    data += chunk
                    if len(data) > CERT_MAX_BYTES:
                        raise WebhookRefused("the certificate is too large")
        except httpx.HTTPError as exc:
            raise WebhookRefused(
                f"the certificate could not be fetched: {type(exc).__name__}"
            ) from exc
        try:
            # The first certificate of the chain is the signer's.
            return x509.load_pem_x509_certificates(data)[0]
        except ValueError as exc:
            raise WebhookRefused("the certificate URL did not serve a PEM certificate") from exc
