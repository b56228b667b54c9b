"""Operator commands: `fta migrate` and `fta create-admin`."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from tests.support.database import MigratedDatabase


def _fta(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fta.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def _as_owner(database: MigratedDatabase) -> dict[str, str]:
    """`fta migrate` runs in a one-shot of its own, connected as the schema's owner."""
    return {
        "FTA_DATABASE_URL": database.owner_url,
        "FTA_DATABASE_RUNTIME_ROLE": database.runtime_role,
    }


def test_migrate_is_idempotent_with_the_one_shots_settings_only(
    app_settings: None, migrated: MigratedDatabase
) -> None:
    # Neither the signing key nor the runtime role's password: what Compose gives the one-shot.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FTA_")},
        **_as_owner(migrated),
        "FTA_MODE": "production",
        "FTA_AUDIT_KEY": os.environ["FTA_AUDIT_KEY"],
    }
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "fta.cli", "migrate"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stderr


def test_create_admin_then_log_in(http: TestClient) -> None:
    email = f"admin-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(16)
    created = _fta("create-admin", "--email", email, env={"FTA_ADMIN_PASSWORD": password})
    assert created.returncode == 0, created.stderr
    assert email in created.stdout and password not in created.stdout + created.stderr
    again = _fta("create-admin", "--email", email, env={"FTA_ADMIN_PASSWORD": password})
    assert again.returncode == 1 and "already exists" in again.stderr
    token = http.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert token.status_code == 200
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    # Administrators have no client resources of their own.
    assert http.get("/api/v1/strategies", headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("command", "secret"),
    [
        ("audit-verify", "FTA_SECRET_KEY"),
        ("audit-verify", "FTA_AUDIT_KEY"),
        ("migrate", "FTA_AUDIT_KEY"),
        ("migrate", "FTA_DATABASE_URL"),
    ],
)
def test_placeholder_secrets_stop_the_process_outside_development(
    app_settings: None, migrated: MigratedDatabase, command: str, secret: str
) -> None:
    placeholder = "changeme"  # pragma: allowlist secret
    env = {**_as_owner(migrated), "FTA_MODE": "production", secret: placeholder}
    result = _fta(command, env=env)
    assert result.returncode != 0
    assert f"{secret} still holds a placeholder" in result.stderr


def test_billing_alerts_lists_the_open_ones_and_resolves_one(app_settings: None) -> None:
    from fta.billing.alerts import service as alerts
    from fta.db import session_scope, utcnow

    key = f"payment:{secrets.token_hex(4)}"
    with session_scope() as session:
        alert = alerts.raise_alert(
            session,
            key=key,
            kind="billing-mismatch",
            message="94,80 € ≠ 99,99 €",
            now=utcnow(),
            blocking=True,
        )
        alert_id = alert.id
    listed = _fta("billing-alerts", env={})
    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if key in line]
    assert line.startswith(f"{alert_id}\t") and "QUARANTINED" in line and "99,99 €" in line

    no_note = _fta("billing-alerts", "--resolve", str(alert_id), env={})
    assert no_note.returncode == 1 and "say what was done" in no_note.stderr
    done = _fta("billing-alerts", "--resolve", str(alert_id), "--note", "refunded", env={})
    assert done.returncode == 0, done.stderr
    assert key not in _fta("billing-alerts", env={}).stdout
    again = _fta("billing-alerts", "--resolve", str(alert_id), "--note", "twice", env={})
    assert again.returncode == 1 and "already resolved" in again.stderr
