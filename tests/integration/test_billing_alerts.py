"""Billing alerts: one open alert per subject, counted while its cause persists; a blocking
one quarantines its subject until an administrator resolves it, with what was done."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from fta.billing.alerts import service as alerts
from fta.db import session_scope
from tests.support.admins import admin_headers, create_admin
from tests.support.api import sign_up

API = "/api/v1/admin/billing/alerts"
NOW = datetime(2040, 1, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def admin_auth(http: TestClient) -> dict[str, str]:
    return admin_headers(http, create_admin())


def test_a_repeated_cause_counts_on_one_open_alert_and_quarantines_until_resolved(
    http: TestClient, admin_auth: dict[str, str]
) -> None:
    key = f"payment:{secrets.token_hex(4)}"
    with session_scope() as session:
        first = alerts.raise_alert(
            session, key=key, kind="test", message="first", now=NOW, blocking=True
        )
        again = alerts.raise_alert(session, key=key, kind="test", message="second", now=NOW)
        assert (again.id, again.occurrences, again.message) == (first.id, 2, "second")
        assert again.blocking  # a later non-blocking report does not release it
        assert alerts.is_quarantined(session, key)
        assert key in alerts.quarantined_keys(session, "payment:")

    listed = http.get(API, headers=admin_auth)
    assert listed.status_code == 200
    assert [a["occurrences"] for a in listed.json() if a["key"] == key] == [2]

    resolved = http.post(
        f"{API}/{first.id}/resolve", json={"resolution": "refund checked"}, headers=admin_auth
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolution"] == "refund checked"
    with session_scope() as session:
        assert not alerts.is_quarantined(session, key)
        # The same cause later is a new alert, the old one stays as history.
        new = alerts.raise_alert(session, key=key, kind="test", message="third", now=NOW)
        assert new.id != first.id and new.occurrences == 1
    again_resolved = http.post(
        f"{API}/{first.id}/resolve", json={"resolution": "twice"}, headers=admin_auth
    )
    assert again_resolved.status_code == 409


def test_only_administrators_see_billing_alerts(http: TestClient) -> None:
    client = sign_up(http, "Curious")
    assert http.get(API, headers=client.auth).status_code == 403
    assert (
        http.post(f"{API}/1/resolve", json={"resolution": "x"}, headers=client.auth).status_code
        == 403
    )
