"""Outgoing e-mail: the portal writes mails into an outbox in its own transaction, the worker
hands them to the SMTP server (retrying), so no request waits on, or fails with, a mail
server. Without a server configured, mails wait in the outbox (`fta mail-outbox`)."""
