"""An account runs nothing before its e-mail address is verified, and the link proves it.

The attack as it was done: sign-ups with made-up addresses, from one client, each of which
could start jobs and bots at once. Now a sign-up only queues a mail; the worker hands it to
the SMTP server (here a real SMTP sink on loopback, aiosmtpd); jobs and bots start after the
mailed link was opened. Links cannot be forged, moved to another account or reused past their
expiry, and resending is throttled.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from fta.accounts import verification
from fta.accounts.models import User
from fta.db import session_scope, utcnow
from fta.mail import service as mail
from fta.mail.models import OutboxMail
from fta.settings import Settings
from tests.support.api import Client, sign_up
from tests.support.smtp_sink import Inbox, deliver

CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240102",
}


def _submit(client: Client) -> int:
    response = client.http.post(
        "/api/v1/jobs", json={"kind": "download-data", "config": CONFIG}, headers=client.auth
    )
    return response.status_code


def test_an_unverified_account_starts_nothing_until_the_mailed_link_is_opened(
    http: TestClient, smtp_sink: tuple[Inbox, Settings]
) -> None:
    inbox, settings = smtp_sink
    client = sign_up(http, "Unverified", verified=False)

    refused = http.post(
        "/api/v1/jobs", json={"kind": "download-data", "config": CONFIG}, headers=client.auth
    )
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "verify your e-mail address first" in refused.json()["detail"]
    assert http.get("/api/v1/jobs", headers=client.auth).json() == []

    assert deliver(settings) >= 1
    (message,) = inbox.to(client.email)
    assert message["Subject"] == verification.SUBJECT
    assert isinstance(message, EmailMessage)
    body = message.get_content()
    link = next(word for word in body.split() if "/verify-email?token=" in word)
    with session_scope() as session:
        assert mail.waiting_for(session, client.email) == [], "a delivered mail leaves it"

    parts = urlsplit(link)
    opened = http.get(f"{parts.path}?{parts.query}")
    assert opened.status_code == 200, opened.text
    assert client.email in opened.text
    assert _submit(client) == 202
    # The same link again changes nothing and still answers.
    assert http.get(f"{parts.path}?{parts.query}").status_code == 200


def test_links_cannot_be_forged_moved_or_used_after_expiry(http: TestClient) -> None:
    victim = sign_up(http, "Victim", verified=False)
    attacker = sign_up(http, "Attacker", verified=False)
    with session_scope() as session:
        user = session.query(User).filter_by(email=attacker.email).one()
        attackers_token = verification.token_for(user, utcnow())
        expired_token = verification.token_for(user, utcnow() - timedelta(days=30))
        victim_id = session.query(User).filter_by(email=victim.email).one().id
    user_part, expires, mac = attackers_token.split(".")
    forged = [
        f"{victim_id.hex}.{expires}.{mac}",  # the attacker's MAC on the victim's id
        f"{user_part}.{int(expires) + 86400}.{mac}",  # a later expiry
        f"{user_part}.{expires}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
        expired_token,
        f"{uuid.uuid4().hex}.{expires}.{mac}",
        attackers_token + "\n",
        "",
    ]
    for token in forged:
        response = http.get("/api/v1/auth/verify-email", params={"token": token})
        assert response.status_code == 422, (token, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    for client in (victim, attacker):
        assert _submit(client) == 403


def test_resending_is_throttled_and_stops_once_verified(http: TestClient) -> None:
    client = sign_up(http, "Resender", verified=False)
    resend = "/api/v1/auth/verify-email/resend"
    # The sign-up's mail counts: four more within the hour, then 429.
    statuses = [http.post(resend, headers=client.auth).status_code for _ in range(5)]
    assert statuses == [202, 202, 202, 202, 429], statuses
    refused = http.post(resend, headers=client.auth)
    assert int(refused.headers["retry-after"]) > 0
    assert "verification mails were sent" in refused.json()["detail"]

    verified = sign_up(http, "AlreadyVerified")
    assert http.post(resend, headers=verified.auth).status_code == 409


def test_a_mail_server_that_is_down_leaves_the_mail_for_later(
    http: TestClient, smtp_sink: tuple[Inbox, Settings]
) -> None:
    _, settings = smtp_sink
    unreachable = settings.model_copy(update={"smtp_port": 1})
    deliver(settings)  # what other tests left in the outbox
    client = sign_up(http, "Patient", verified=False)
    assert deliver(unreachable) == 0
    with session_scope() as session:
        (waiting,) = mail.waiting_for(session, client.email)
        assert waiting.attempts == 1 and waiting.last_error
        assert waiting.next_attempt_at > utcnow()
        mail_id = waiting.id
    # Due again: delivered once the server answers.
    with session_scope() as session:
        row = session.get(OutboxMail, mail_id)
        assert row is not None
        row.next_attempt_at = utcnow()
    assert deliver(settings) >= 1
    with session_scope() as session:
        assert mail.waiting_for(session, client.email) == []
