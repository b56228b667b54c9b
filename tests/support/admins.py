"""Platform administrators for tests: made as `fta create-admin` makes them, with two-factor
log-in turned on (the operator's console and the admin API require it), or without."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import pyotp
from fastapi.testclient import TestClient

from fta.accounts import two_factor
from fta.accounts.service import create_admin as create_admin_user
from fta.db import session_scope, utcnow


@dataclass
class Admin:
    email: str
    password: str
    # Each log-in spends one: a recovery code never repeats, where two app codes within the
    # same 30 s would be refused as a replay.
    recovery_codes: list[str] = field(default_factory=list)
    secret: str | None = None

    def login_body(self) -> dict[str, str]:
        body = {"email": self.email, "password": self.password}
        if self.secret is not None:
            body["otp"] = self.recovery_codes.pop()
        return body


def create_admin(*, with_two_factor: bool = True) -> Admin:
    admin = Admin(f"admin-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(16))
    with session_scope() as session:
        user = create_admin_user(session, email=admin.email, password=admin.password)
        if with_two_factor:
            now = utcnow()
            enrolment = two_factor.start_enrolment(user, now)
            locked = two_factor.locked_user(session, user.id)
            codes = two_factor.confirm_enrolment(
                session, locked, enrolment, pyotp.TOTP(enrolment.secret).at(now), now, None
            )
            assert codes is not None
            admin.recovery_codes, admin.secret = codes, enrolment.secret
    return admin


def admin_headers(http: TestClient, admin: Admin) -> dict[str, str]:
    """The Authorization header of a fresh log-in of the administrator."""
    response = http.post("/api/v1/auth/token", json=admin.login_body())
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
