"""PayPal webhook signatures, checked against certificates the stand-in serves over TLS, and
the pacing of the webhook endpoint."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from fta.billing.paypal.webhooks import (
    PAYPAL_CERT_HOSTS,
    CertificateTrust,
    DeliveryLimits,
    WebhookRefused,
    WebhookVerifier,
    check_cert_url,
    paypal_trust,
)
from tests.support.paypal_standin import PayPalStandin

BODY = json.dumps({"id": "WH-1", "event_type": "BILLING.SUBSCRIPTION.ACTIVATED"}).encode()
CERT_PATH = "/v1/notifications/certs/CERT-360caa42-fca2a594-df8cd2d5"  # pragma: allowlist secret


@pytest.fixture(scope="module")
def standin() -> Iterator[PayPalStandin]:
    with PayPalStandin() as standin:
        yield standin


def verifier(standin: PayPalStandin, trust: CertificateTrust | None = None) -> WebhookVerifier:
    return WebhookVerifier(
        standin.webhook_id, trust or standin.certificate_trust(), http=standin.http_client()
    )


def refusal(check: WebhookVerifier, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(WebhookRefused) as refused:
        check.verify({k.lower(): v for k, v in headers.items()}, body)
    return refused.value.reason


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def certificate_fetches(standin: PayPalStandin) -> int:
    return len(standin.seen("/v1/notifications/certs/"))


def test_a_good_signature_passes_and_the_certificate_is_fetched_once(
    standin: PayPalStandin,
) -> None:
    check = verifier(standin)
    before = len(standin.seen("/v1/notifications/certs/CERT-signing"))
    check.verify(lower(standin.signed_headers(BODY)), BODY)
    check.verify(lower(standin.signed_headers(BODY)), BODY)
    assert len(standin.seen("/v1/notifications/certs/CERT-signing")) == before + 1


def test_an_altered_body_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY)
    altered = BODY.replace(b"ACTIVATED", b"CANCELLED")
    assert "signature" in refusal(verifier(standin), headers, altered)


@pytest.mark.parametrize(
    "header", ["PAYPAL-TRANSMISSION-ID", "PAYPAL-TRANSMISSION-TIME", "PAYPAL-TRANSMISSION-SIG"]
)
def test_an_altered_header_is_refused(standin: PayPalStandin, header: str) -> None:
    headers = standin.signed_headers(BODY)
    # Each replacement is well formed: the id, time and signature of another fresh delivery.
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    other = standin.signed_headers(BODY + b" ", sent_at=earlier)
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
    before = certificate_fetches(standin)
    good = standin.cert_url()
    origin = f"https://127.0.0.1:{standin.port}"
    # The same server under another name or port, plain http, userinfo, a query, a fragment,
    # another path, an escape, a trailing dot: each on the same certificate.
    for cert_url in (
        standin.cert_url(host="localhost"),
        good.replace(f":{standin.port}", f":{standin.port + 1}"),
        good.replace(f":{standin.port}", ""),
        good.replace("https://", "http://"),
        good.replace("https://", "https://user@"),
        good.replace("https://", f"https://127.0.0.1:{standin.port}@"),
        good + "?x=1",
        good + "#x",
        good + "/",
        f"{origin}/certs/CERT-signing",
        f"{origin}/v1/notifications/certs/../certs/CERT-signing",
        f"{origin}/v1/notifications/certs/CERT%2Dsigning",
        f"{origin}/v1/notifications/certs/CERT-signing%0A",
        f"{origin}/v1/notifications/certs/CERT- signing",
        good.replace("127.0.0.1", "127.0.0.1."),
        good.replace("https://", "HTTPS://"),
    ):
        headers = standin.signed_headers(BODY, cert_url=cert_url)
        reason = refusal(verifier(standin), headers)
        assert "PAYPAL-CERT-URL" in reason, cert_url
    assert certificate_fetches(standin) == before


@pytest.mark.parametrize(
    "url",
    [
        f"https://api.paypal.com{CERT_PATH}",
        f"https://api.sandbox.paypal.com{CERT_PATH}",
    ],
)
def test_paypal_certificate_urls_pass_the_production_hosts(url: str) -> None:
    check_cert_url(url, PAYPAL_CERT_HOSTS)


@pytest.mark.parametrize(
    "url",
    [
        # Subdomains and look-alikes of PayPal's hosts (the old "*.paypal.com" took these).
        f"https://evil.paypal.com{CERT_PATH}",
        f"https://messageverificationcerts.paypal.com{CERT_PATH}",
        f"https://api.paypal.com.evil.test{CERT_PATH}",
        f"https://api-paypal.com{CERT_PATH}",
        # Any port, even https's own written out, and anything but the certificate path.
        f"https://api.paypal.com:8443{CERT_PATH}",
        f"https://api.paypal.com:443{CERT_PATH}",
        "https://api.paypal.com/v1/oauth2/token",
        "https://api.paypal.com/v1/notifications/certs/",
        f"https://api.paypal.com{CERT_PATH}?redirect=https://evil.test",
        f"https://evil.test@api.paypal.com{CERT_PATH}",
        f"https://api.paypal.com@evil.test{CERT_PATH}",
        f"https://api.paypal.com\\@evil.test{CERT_PATH}",
        f"http://api.paypal.com{CERT_PATH}",
    ],
)
def test_other_urls_are_refused_by_the_production_hosts(url: str) -> None:
    with pytest.raises(WebhookRefused, match="PAYPAL-CERT-URL"):
        check_cert_url(url, PAYPAL_CERT_HOSTS)


def test_the_production_configuration_trusts_the_system_roots_on_paypal_hosts(
    standin: PayPalStandin, tmp_path: Path
) -> None:
    production = paypal_trust()
    assert production.hosts == {"api.paypal.com", "api.sandbox.paypal.com"}
    assert production.roots
    # The stand-in's CA is nobody's root but the tests'.
    ca = x509.load_pem_x509_certificate(standin.ca_pem)
    assert ca not in production.roots
    roots = tmp_path / "roots.pem"
    roots.write_bytes(standin.ca_pem)
    assert paypal_trust(str(roots)).roots == (ca,)


def test_an_expired_certificate_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY, signer="expired")
    assert "expired" in refusal(verifier(standin), headers)


def test_a_certificate_in_another_name_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY, signer="misnamed")
    assert "PayPal's name" in refusal(verifier(standin), headers)


def test_a_certificate_that_does_not_chain_to_a_trusted_root_is_refused(
    standin: PayPalStandin,
) -> None:
    # A forger's certificate in PayPal's name, claiming the real intermediate as its issuer.
    headers = standin.signed_headers(BODY, signer="untrusted")
    assert "trusted root" in refusal(verifier(standin), headers)
    # The stand-in's genuine signer, for a verifier that trusts other roots only.
    system = CertificateTrust(standin.certificate_trust().hosts, paypal_trust().roots)
    headers = standin.signed_headers(BODY)
    assert "trusted root" in refusal(verifier(standin, system), headers)


@pytest.mark.parametrize(
    ("shift", "reason"),
    [
        (dt.timedelta(days=4, minutes=1), "older than"),
        (dt.timedelta(minutes=-6), "in the future"),
    ],
)
def test_a_transmission_outside_the_time_window_is_refused(
    standin: PayPalStandin, shift: dt.timedelta, reason: str
) -> None:
    before = certificate_fetches(standin)
    headers = standin.signed_headers(BODY, sent_at=dt.datetime.now(dt.UTC) - shift)
    assert reason in refusal(verifier(standin), headers)
    assert certificate_fetches(standin) == before


@pytest.mark.parametrize(
    "shift", [dt.timedelta(days=3, hours=23), dt.timedelta(minutes=-4), dt.timedelta(0)]
)
def test_a_retry_within_the_window_passes(standin: PayPalStandin, shift: dt.timedelta) -> None:
    # PayPal retries for 3 days with the transmission's original time.
    headers = standin.signed_headers(BODY, sent_at=dt.datetime.now(dt.UTC) - shift)
    verifier(standin).verify(lower(headers), BODY)


def test_a_transmission_time_that_is_no_date_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY)
    headers["PAYPAL-TRANSMISSION-TIME"] = "yesterday"
    assert "PAYPAL-TRANSMISSION-TIME" in refusal(verifier(standin), headers)
    headers["PAYPAL-TRANSMISSION-TIME"] = dt.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
    assert "time zone" in refusal(verifier(standin), headers)


def test_another_algorithm_is_refused(standin: PayPalStandin) -> None:
    before = certificate_fetches(standin)
    headers = standin.signed_headers(BODY, algo="SHA1withRSA")
    assert "SHA256withRSA" in refusal(verifier(standin), headers)
    assert certificate_fetches(standin) == before


def test_a_certificate_url_that_serves_no_certificate_is_refused(standin: PayPalStandin) -> None:
    headers = standin.signed_headers(BODY, cert_url=standin.cert_url("unknown"))
    assert "HTTP 404" in refusal(verifier(standin), headers)


# --- pacing ---


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_address_has_its_own_rate_and_all_share_a_total() -> None:
    clock = Clock()
    limits = DeliveryLimits(per_address_per_minute=2, per_minute=3, clock=clock)
    assert limits.admit("192.0.2.1") == (0, "")
    assert limits.admit("192.0.2.1") == (0, "")
    # One token back every 30 s at 2 a minute.
    assert limits.admit("192.0.2.1") == (30, "address")
    # The refused request took nothing from the total: another address still gets one.
    assert limits.admit("192.0.2.2") == (0, "")
    assert limits.admit("192.0.2.3") == (20, "global")
    clock.now += 20
    assert limits.admit("192.0.2.3") == (0, "")
    clock.now += 60
    assert limits.admit("192.0.2.1") == (0, "")


def test_an_ipv6_network_counts_as_one_address() -> None:
    limits = DeliveryLimits(per_address_per_minute=1, per_minute=100, clock=Clock())
    assert limits.admit("2001:db8::1") == (0, "")
    assert limits.admit("2001:db8::2")[1] == "address"
    assert limits.admit("2001:db8:0:1::1") == (0, "")


def test_the_operator_alert_is_due_at_most_once_a_minute() -> None:
    clock = Clock()
    limits = DeliveryLimits(per_address_per_minute=1, per_minute=1, clock=clock)
    assert limits.alert_due()
    assert not limits.alert_due()
    clock.now += 60
    assert limits.alert_due()
