"""FTA_SECRET_KEY rotates as docs/operations.md says: the new key in FTA_SECRET_KEY, the old
one in FTA_SECRET_KEY_PREVIOUS. Clients are logged out (sessions and tokens were signed with
the old key); two-factor log-in goes on (secrets sealed under the old key open, and are sealed
again under the new one at their next use; recovery codes made before still serve); running
bots are reached with the secrets their containers were started with."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.accounts.models import User
from fta.bots import relay
from fta.bots.models import Bot
from fta.db import session_scope
from fta.settings import get_settings
from tests.support.admins import Admin, create_admin


@pytest.fixture
def rotate(app_settings: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    def to_new_key(*, keep_previous: bool = True) -> None:
        old = get_settings().secret_key.get_secret_value()
        monkeypatch.setenv("FTA_SECRET_KEY", secrets.token_urlsafe(48))
        if keep_previous:
            monkeypatch.setenv("FTA_SECRET_KEY_PREVIOUS", old)
        else:
            monkeypatch.delenv("FTA_SECRET_KEY_PREVIOUS", raising=False)
        get_settings.cache_clear()

    yield to_new_key
    monkeypatch.undo()
    get_settings.cache_clear()


def _token(http: TestClient, admin: Admin, otp: str) -> str:
    answer = http.post(
        "/api/v1/auth/token",
        json={"email": admin.email, "password": admin.password, "otp": otp},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _sealed_secret(admin: Admin) -> str | None:
    with session_scope() as session:
        return session.scalars(select(User.totp_secret).where(User.email == admin.email)).one()


def test_a_rotated_key_logs_clients_out_and_keeps_two_factor_log_in(
    http: TestClient, rotate: object
) -> None:
    admin = create_admin()
    assert admin.secret is not None
    before = _token(http, admin, admin.recovery_codes.pop())
    sealed_before = _sealed_secret(admin)
    rotate()  # type: ignore[operator]

    # Signed with the old key: refused.
    answer = http.get("/api/v1/auth/tokens", headers={"Authorization": f"Bearer {before}"})
    assert answer.status_code == 401
    # The authenticator app's codes go on; the secret is sealed again under the new key.
    # (the next step's code: enrolment spent this step's)
    fresh = _token(http, admin, pyotp.TOTP(admin.secret).at(time.time() + 30))
    assert (
        http.get("/api/v1/auth/tokens", headers={"Authorization": f"Bearer {fresh}"}).status_code
        == 200
    )
    assert _sealed_secret(admin) != sealed_before
    # A recovery code made before the rotation still serves, while the old key is kept.
    _token(http, admin, admin.recovery_codes.pop())

    # The old key dropped: the re-sealed secret opens; the old recovery codes no longer do.
    rotate(keep_previous=False)  # type: ignore[operator]
    refused = http.post(
        "/api/v1/auth/token",
        json={"email": admin.email, "password": admin.password, "otp": admin.recovery_codes.pop()},
    )
    assert refused.status_code == 401


def test_a_running_bot_is_reached_with_the_secrets_it_was_started_with(rotate: object) -> None:
    bot = Bot(id=uuid.uuid4())
    started, started_key = relay.start_secrets(bot.id)
    bot.api_key_id = started_key
    rotate()  # type: ignore[operator]
    assert relay.api_secrets(bot) == started  # the previous key's, named by the row
    restarted, restarted_key = relay.start_secrets(bot.id)
    assert restarted != started and restarted_key != started_key
    bot.api_key_id = restarted_key
    assert relay.api_secrets(bot) == restarted
    # A container started before rows named their key: the previous key's during a rotation.
    unnamed = Bot(id=bot.id, api_key_id=None)
    assert relay.api_secrets(unnamed) == started
