"""Queueing mail, and handing it to the SMTP server (the worker's periodic step)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fta.db import utcnow
from fta.mail.models import OutboxMail
from fta.settings import Settings

log = logging.getLogger(__name__)

BATCH = 50
SMTP_TIMEOUT_SECONDS = 15
MAX_ATTEMPTS = 10
# Retry after 1, 2, 4 … minutes, at most an hour apart.
RETRY_FIRST = timedelta(minutes=1)
RETRY_MAX = timedelta(hours=1)


def queue(
    session: Session, *, to: str, subject: str, body: str, link: str | None = None
) -> OutboxMail:
    mail = OutboxMail(to_address=to, subject=subject, body=body, link=link)
    session.add(mail)
    return mail


def queued_since(session: Session, to: str, since: datetime, subject: str) -> int:
    """Mails with this subject queued for `to` since `since` (to throttle resends)."""
    count = session.scalar(
        select(func.count())
        .select_from(OutboxMail)
        .where(
            OutboxMail.to_address == to,
            OutboxMail.subject == subject,
            OutboxMail.created_at >= since,
        )
    )
    return count or 0


def waiting_for(session: Session, to: str) -> list[OutboxMail]:
    """Unsent mails to `to`, newest first: what the operator's outbox view shows."""
    return list(
        session.scalars(
            select(OutboxMail)
            .where(OutboxMail.to_address == to, OutboxMail.sent_at.is_(None))
            .order_by(OutboxMail.created_at.desc())
        )
    )


def deliver(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Hands due mails to the SMTP server; returns how many were sent. Does nothing without
    a server configured. A failure is retried later, with a growing delay."""
    if not settings.smtp_host:
        return 0
    now = now or utcnow()
    due = list(
        session.scalars(
            select(OutboxMail)
            .where(
                OutboxMail.sent_at.is_(None),
                OutboxMail.attempts < MAX_ATTEMPTS,
                OutboxMail.next_attempt_at <= now,
            )
            .order_by(OutboxMail.created_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    if not due:
        return 0
    sent = 0
    try:
        with _connect(settings) as smtp:
            for mail in due:
                try:
                    smtp.send_message(_message(mail, settings))
                except smtplib.SMTPException as error:
                    _failed(mail, now, error)
                    continue
                mail.sent_at, mail.body, mail.link = now, "", None
                sent += 1
    except (OSError, smtplib.SMTPException) as error:
        log.warning("mail server %s unreachable: %s", settings.smtp_host, error)
        for mail in due:
            if mail.sent_at is None:
                _failed(mail, now, error)
    return sent


def _failed(mail: OutboxMail, now: datetime, error: Exception) -> None:
    mail.attempts += 1
    mail.last_error = str(error)[:500]
    mail.next_attempt_at = now + min(RETRY_FIRST * (1 << min(mail.attempts, 10)), RETRY_MAX)


def _message(mail: OutboxMail, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(domain="fta")
    message.set_content(mail.body)
    return message


def _connect(settings: Settings) -> smtplib.SMTP:
    host, port = settings.smtp_host, settings.smtp_port
    smtp: smtplib.SMTP
    if settings.smtp_security == "tls":
        smtp = smtplib.SMTP_SSL(
            host, port, timeout=SMTP_TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
        if settings.smtp_security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
    if settings.smtp_username:
        smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
    return smtp
