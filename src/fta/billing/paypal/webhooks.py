"""Verifies PayPal webhook signatures by PayPal's certificate method, offline, and paces the
webhook endpoint.

PayPal signs `transmission_id|transmission_time|webhook_id|crc32(raw body)` with RSA-SHA256
and names, in PAYPAL-CERT-URL, where its certificate is. That URL arrives with the request,
so it is attacker-controlled: it must be exactly https://<allowed host>/v1/notifications/certs/
<name> (PayPal's own hosts by default, nothing else in the URL), it is fetched without
following redirects, and the certificate it serves must be issued to PayPal's message
verification name, be within its validity and chain to a trusted root.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

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
# Where PayPal serves its signing certificates (live, sandbox), always on https's own port,
# e.g. https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-df8cd2d5.
PAYPAL_CERT_HOSTS = frozenset({"api.paypal.com", "api.sandbox.paypal.com"})
CERT_PATH_PREFIX = "/v1/notifications/certs/"
# The whole URL: no userinfo, query, fragment, escapes or further path segments.
_CERT_URL = re.compile(r"https://([a-z0-9.:-]+)/v1/notifications/certs/([A-Za-z0-9_-]{1,128})")
# The names PayPal's signing certificates are issued to (PayPal's SDKs check the same).
SIGNER_NAMES = frozenset(
    {"messageverificationcerts.paypal.com", "messageverificationcerts.sandbox.paypal.com"}
)
# PayPal retries a delivery up to 25 times over 3 days, and a retry repeats the transmission
# (its id and time): a delivery is accepted for 3 days and a margin, and a little ahead for
# clock skew. Replays inside that window repeat a genuine event, which is recorded once.
DEFAULT_MAX_AGE = timedelta(days=4)
MAX_CLOCK_SKEW = timedelta(minutes=5)


class WebhookRefused(Exception):
    """The delivery is not provably PayPal's; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CertificateTrust:
    """Where signing certificates may be fetched from (`host` for https's default port, or
    `host:port`, exactly) and the roots their chain must end at."""

    hosts: frozenset[str]
    roots: tuple[x509.Certificate, ...]


def system_roots() -> tuple[x509.Certificate, ...]:
    """The operating system's trusted roots (the CA bundle OpenSSL uses by default)."""
    return load_roots(Path(ssl.get_default_verify_paths().openssl_cafile))


def load_roots(path: Path) -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(path.read_bytes()))


def paypal_trust(roots_file: str = "") -> CertificateTrust:
    """PayPal's certificate hosts, trusting `roots_file` (PEM) or else the system's roots."""
    roots = load_roots(Path(roots_file)) if roots_file else system_roots()
    return CertificateTrust(PAYPAL_CERT_HOSTS, roots)


def check_cert_url(url: str, hosts: Iterable[str]) -> None:
    """Refuses any PAYPAL-CERT-URL that is not exactly a certificate path on an allowed host."""
    match = _CERT_URL.fullmatch(url)
    if match is None:
        raise WebhookRefused(
            f"PAYPAL-CERT-URL must be https://<host>{CERT_PATH_PREFIX}<name> and nothing more"
        )
    if match.group(1) not in hosts:
        raise WebhookRefused(f"PAYPAL-CERT-URL is not on {', '.join(sorted(hosts))}")


def signed_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def _names_of(certificate: x509.Certificate) -> set[str]:
    names = {
        str(attribute.value).lower()
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    }
    try:
        alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return names
    return names | {name.lower() for name in alternative.value.get_values_for_type(x509.DNSName)}


class WebhookVerifier:
    """Checks deliveries for one webhook id. Certificates are cached by URL."""

    def __init__(
        self,
        webhook_id: str,
        trust: CertificateTrust,
        *,
        http: httpx.Client | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        self.webhook_id = webhook_id
        self.trust = trust
        self.max_age = max_age
        self._http = http or httpx.Client(timeout=FETCH_TIMEOUT_SECONDS)
        self._clock = clock
        self._lock = threading.Lock()
        self._chains: dict[str, list[x509.Certificate]] = {}

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
        now = self._clock()
        self._check_time(values["paypal-transmission-time"], now)
        check_cert_url(values["paypal-cert-url"], self.trust.hosts)
        certificate = self._signer(values["paypal-cert-url"], now)
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

    def _check_time(self, value: str, now: datetime) -> None:
        try:
            sent = datetime.fromisoformat(value)
        except ValueError as exc:
            raise WebhookRefused("PAYPAL-TRANSMISSION-TIME is not a date and time") from exc
        if sent.tzinfo is None:
            raise WebhookRefused("PAYPAL-TRANSMISSION-TIME has no time zone")
        if sent > now + MAX_CLOCK_SKEW:
            raise WebhookRefused("PAYPAL-TRANSMISSION-TIME is in the future")
        if sent < now - self.max_age:
            raise WebhookRefused(f"PAYPAL-TRANSMISSION-TIME is older than {self.max_age}")

    def _signer(self, url: str, now: datetime) -> x509.Certificate:
        """The certificate at `url`, checked for name, validity and chain at `now`."""
        with self._lock:
            chain = self._chains.get(url)
        if chain is None:
            chain = self._fetch(url)
            with self._lock:
                self._chains[url] = chain
        # The first certificate is the signer's; any others are intermediates to a root.
        leaf, intermediates = chain[0], chain[1:]
        if not _names_of(leaf) & SIGNER_NAMES:
            raise WebhookRefused("the signing certificate is not issued to PayPal's name")
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise WebhookRefused("the signing certificate is expired or not yet valid")
        if not self.trust.roots:
            raise WebhookRefused("no trusted root is configured for signing certificates")
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store(list(self.trust.roots)))
            .time(now.astimezone(UTC))
            .extension_policies(
                ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                # The signer's name was checked above; its usages are PayPal's business.
                ee_policy=verification.ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
        except verification.VerificationError as exc:
            raise WebhookRefused(
                "the signing certificate does not chain to a trusted root"
            ) from exc
        return leaf

    def _fetch(self, url: str) -> list[x509.Certificate]:
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
            return x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise WebhookRefused("the certificate URL did not serve a PEM certificate") from exc


# --- pacing of the endpoint ---

# Addresses tracked at once; past it, idle ones are forgotten (their bucket is full anyway).
MAX_TRACKED_ADDRESSES = 10_000
IPV6_PREFIX = 64
ALERT_EVERY_SECONDS = 60.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class DeliveryLimits:
    """Token buckets for the webhook endpoint: one per client address (an IPv6 /64 counts as
    one) and one for all. A refused request takes no token from either, so one address's
    flood does not use up the others' share. `clock` is monotonic seconds."""

    def __init__(
        self,
        *,
        per_address_per_minute: int,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_address_per_minute < 1 or per_minute < 1:
            raise ValueError("webhook rate limits must allow at least one request a minute")
        self.per_address_per_minute = per_address_per_minute
        self.per_minute = per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._everyone = _Bucket(float(per_minute), clock())
        self._addresses: dict[str, _Bucket] = {}
        self._alerted_at: float | None = None

    def admit(self, address: str | None) -> tuple[int, str]:
        """(0, "") when a request from `address` may go, else the seconds to wait and which
        limit refused it ("address" or "global")."""
        key = _address_key(address)
        with self._lock:
            now = self._clock()
            everyone = self._refill(self._everyone, self.per_minute, now)
            own = self._addresses.get(key)
            if own is None:
                if len(self._addresses) >= MAX_TRACKED_ADDRESSES:
                    self._forget_idle(now)
                own = self._addresses[key] = _Bucket(float(self.per_address_per_minute), now)
            own = self._refill(own, self.per_address_per_minute, now)
            if own.tokens < 1:
                return _wait(own, self.per_address_per_minute), "address"
            if everyone.tokens < 1:
                return _wait(everyone, self.per_minute), "global"
            own.tokens -= 1
            everyone.tokens -= 1
            return 0, ""

    def alert_due(self) -> bool:
        """Whether to tell the operator that the total limit refused a request: at most once
        a minute, so a flood costs no more than that."""
        with self._lock:
            now = self._clock()
            if self._alerted_at is not None and now - self._alerted_at < ALERT_EVERY_SECONDS:
                return False
            self._alerted_at = now
            return True

    @staticmethod
    def _refill(bucket: _Bucket, per_minute: int, now: float) -> _Bucket:
        bucket.tokens = min(
            float(per_minute), bucket.tokens + (now - bucket.updated) * per_minute / 60
        )
        bucket.updated = now
        return bucket

    def _forget_idle(self, now: float) -> None:
        rate = self.per_address_per_minute
        for key, bucket in list(self._addresses.items()):
            if bucket.tokens + (now - bucket.updated) * rate / 60 >= rate:
                del self._addresses[key]
        if len(self._addresses) >= MAX_TRACKED_ADDRESSES:
            # Every tracked address is busy: forget the one seen longest ago.
            del self._addresses[min(self._addresses, key=lambda k: self._addresses[k].updated)]


def _wait(bucket: _Bucket, per_minute: int) -> int:
    return max(1, math.ceil((1 - bucket.tokens) * 60 / per_minute))


def _address_key(address: str | None) -> str:
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return address or ""
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)
