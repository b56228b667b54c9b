"""Operator commands: `fta migrate` and `fta create-admin`."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from fastapi.testclient import TestClient


def _fta(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fta.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


def test_migrate_is_idempotent(app_settings: None) -> None:
    result = _fta("migrate", env={})
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


def test_placeholder_secrets_stop_the_process_outside_development(app_settings: None) -> None:
    result = _fta("migrate", env={"FTA_MODE": "production", "FTA_SECRET_KEY": "changeme"})
    assert result.returncode != 0
    assert "placeholder" in result.stderr
