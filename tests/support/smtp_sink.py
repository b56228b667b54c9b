"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and settings that
make the worker's mail step deliver to it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from fta.db import session_scope
from fta.mail import service as mail
from fta.settings import Settings, get_settings


class Inbox:
    """What the SMTP sink received."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        received = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), received))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [message for rcpt, message in self.messages if address in rcpt]

    def link_to(self, address: str, path: str) -> str:
        """The link to `path` in the newest mail to `address`."""
        message = self.to(address)[-1]
        assert isinstance(message, EmailMessage)
        return next(word for word in message.get_content().split() if path in word)


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Inbox, Settings]]:
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = get_settings().model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_security": "none"}
        )
        yield inbox, settings
    finally:
        controller.stop()


def deliver(settings: Settings) -> int:
    """Hands everything due to the server, as the worker's mail step does: the suite's other
    sign-ups queued mails too, and each round takes a batch."""
    sent = 0
    for _ in range(500):
        with session_scope() as session:
            batch = mail.deliver(session, settings)
        if not batch:
            return sent
        sent += batch
    raise AssertionError("the outbox did not empty in 500 rounds")
