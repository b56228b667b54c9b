"""PayPal webhook signatures, checked against certificates the stand-in serves over TLS."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from fta.billing.paypal.webhooks import WebhookRefused, WebhookVerifier, host_allowed
from tests.support.paypal_standin import PayPalStandin

BODY = json.dumps({"id": "WH-1", "event_type": "BILLING.SUBSCRIPTION.ACTIVATED"}).encode()


@pytest.fixture(scope="module")
def standin() -> Iterator[PayPalStandin]:
    with PayPalStandin() as standin:
        yield standin


def verifier(standin: PayPalStandin, *, host: str = "127.0.0.1") -> WebhookVerifier:
    return WebhookVerifier(standin.webhook_id, host, http=standin.http_client())


def refusal(check: WebhookVerifier, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(WebhookRefused) as refused:
        check.verify({k.lower(): v for k, v in headers.items()}, body)
    return refused.value.reason


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_a_good_signature_passes_and_the_certificate_is_fetched_once(
    standin: PayPalStandin,
) -> None:
    check = verifier(standin)
    before = len(standin.seen("/certs/signing.pem"))
    check.verify(lower(standin.signed_headers(BODY)), BODY)
    check.verify(lower(standin.signed_headers(BODY)), BODY)
    assert len(standin.seen("/certs/signing.pem")) == before + 1


def test_an_altered_body_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY)
    altered = BODY.replace(b"ACTIVATED", b"CANCELLED")
    assert "signature" in refusal(verifier(standin), headers, altered)


@pytest.mark.parametrize(
    "header", ["PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG"]
)
def test_an_altered_header_is_refused(standin: PayPalStandin, header: str) -> None:
    headers = standin.signed_headers(BODY)
    # Each replacement is well formed: the id and signature of another delivery, another time.
    other = standin.signed_headers(BODY + b" ")
    other["PAYPAL-TRANSMISSION-TIME"] = "2020-01-01T00:00:00Z"
    assert other[header] != headers[header]
    headers[header] = other[header]
    assert "signature" in refusal(verifier(standin), headers)


def test_a_missing_header_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY)
    del headers["PAYPAL-CERT-URL"]
    assert "paypal-cert-url" in refusal(verifier(standin), headers)


def test_another_webhook_id_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY, webhook_id="WH-SOMEONE-ELSE")
    assert "signature" in refusal(verifier(standin), headers)


def test_a_certificate_elsewhere_is_never_fetched(standin: PayPalStandin) -> None:
    before = len(standin.seen("/certs/"))
    # The same server under another name, and plain http on the allowed host.
    for cert_url in (
        standin.cert_url(host="localhost"),
        standin.cert_url().replace("https://", "http://"),
        standin.cert_url().replace("https://", "https://user@"),
    ):
        headers = standin.signed_headers(BODY, cert_url=cert_url)
        reason = refusal(verifier(standin), headers)
        assert "PAYPAL-CERT-URL" in reason
    assert len(standin.seen("/certs/")) == before


def test_an_expired_certificate_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY, signer="expired")
    assert "expired" in refusal(verifier(standin), headers)


def test_another_algorithm_is_refused(standin: PayPalStandin) -> None:
    before = len(standin.seen("/certs/"))
    headers = standin.signed_headers(BODY, algo="SHA1withRSA")
    assert "SHA256withRSA" in refusal(verifier(standin), headers)
    assert len(standin.seen("/certs/")) == before


def test_a_certificate_url_that_serves_no_certificate_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY, cert_url=standin.cert_url("unknown"))
    assert "HTTP 404" in refusal(verifier(standin), headers)


def test_the_allowed_host_pattern() -> None:
    assert host_allowed("api.paypal.com", "*.paypal.com")
    assert host_allowed("api.sandbox.paypal.com", "*.paypal.com")
    assert host_allowed("API.PayPal.com.", "*.paypal.com")
    assert not host_allowed("paypal.com", "*.paypal.com")
    assert not host_allowed("evilpaypal.com", "*.paypal.com")
    assert not host_allowed("api.paypal.com.evil.test", "*.paypal.com")
    assert host_allowed("127.0.0.1", "127.0.0.1")
    assert not host_allowed("localhost", "127.0.0.1")
