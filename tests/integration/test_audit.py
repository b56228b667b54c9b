"""The audit log is append-only and its hash chain exposes tampering."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from fta.audit.models import AuditEvent
from fta.audit.service import record, verify_chain
from fta.db import session_scope
from tests.support.api import sign_up
from tests.support.audit import forge_audit_row


def test_actions_are_recorded_in_the_tenant_chain(http: TestClient) -> None:
    client = sign_up(http)
    http.post("/api/v1/auth/logout", headers=client.auth)
    with session_scope() as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.chain == client.tenant_id)
            .order_by(AuditEvent.seq)
        ).all()
        assert actions == [
            "account.signup",
            "account.verify_email",
            "auth.login",
            "auth.logout",
        ]
        assert verify_chain(session, client.tenant_id) is None


def test_updates_and_deletes_are_refused_by_the_database(
    app_settings: None, owner_engine: Engine
) -> None:
    with session_scope() as session:
        event = record(session, actor="test", action="test.event")
        event_id = event.id
    statements = (
        "UPDATE audit_events SET action = 'forged' WHERE id = :id",
        "DELETE FROM audit_events WHERE id = :id",
    )
    # The application's role holds no such right; the owner is stopped by the trigger.
    for statement in statements:
        with pytest.raises(DBAPIError, match="permission denied"), session_scope() as session:
            session.execute(text(statement), {"id": event_id})
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), owner_engine.begin() as connection:
            connection.execute(text(statement), {"id": event_id})


def test_tampering_is_detected(http: TestClient, owner_engine: Engine) -> None:
    client = sign_up(http)
    http.post("/api/v1/auth/logout", headers=client.auth)
    # Only the schema's owner (or a superuser) can do this: disable the guard, forge a row.
    forge_audit_row(owner_engine, client.tenant_id, 2, "ip", "203.0.113.9")
    with session_scope() as session:
        assert verify_chain(session, client.tenant_id) == 2
