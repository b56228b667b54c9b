"""Helpers to drive the REST API as a client would."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from fta.accounts.models import BillingStatus, Tenant
from fta.billing.account_states import apply_billing_state
from fta.db import session_scope, utcnow
from fta.mail import service as mail
from tests.integration.strategies import source


@dataclass
class Client:
    http: TestClient
    tenant_id: str
    email: str
    password: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def sign_up(http: TestClient, name: str = "Client", *, verified: bool = True) -> Client:
    """A new client, logged in; with its e-mail address verified (through the link of the
    mail the sign-up queued) unless told otherwise."""
    email = f"{name.lower()}-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(16)
    response = http.post(
        "/api/v1/auth/signup", json={"email": email, "password": password, "display_name": name}
    )
    assert response.status_code == 201, response.text
    if verified:
        opened = http.get(verification_path(email))
        assert opened.status_code == 200, opened.text
    tenant_id = response.json()["tenant_id"]
    token = http.post("/api/v1/auth/token", json={"email": email, "password": password})
    assert token.status_code == 200, token.text
    return Client(http, tenant_id, email, password, token.json()["access_token"])


def subscribe(client: Client) -> Client:
    """Makes the client a paying one (as its first PayPal payment would): a trial's tighter
    job bounds no longer apply."""
    with session_scope() as session:
        tenant = session.get(Tenant, client.tenant_id)
        assert tenant is not None
        apply_billing_state(session, tenant, BillingStatus.ACTIVE, utcnow())
    return client


def verification_path(email: str) -> str:
    """The path and query of the newest verification link waiting in the outbox for `email`."""
    with session_scope() as session:
        link = next(m.link for m in mail.waiting_for(session, email) if m.link)
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def upload_strategy(client: Client, name: str = "Quick") -> str:
    """Uploads the test strategy `name` (tests/integration/strategies, docs/examples); its id."""
    response = client.http.post(
        "/api/v1/strategies", json={"name": name, "source": source(name)}, headers=client.auth
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def leave_nothing_waiting(client: Client) -> None:
    """Cancels the client's queued jobs and deletes its bots, so that a worker that runs
    later finds nothing of this client's to start."""
    for job in client.http.get("/api/v1/jobs", headers=client.auth).json():
        if job["status"] == "queued":
            client.http.post(f"/api/v1/jobs/{job['id']}/cancel", headers=client.auth)
    for bot in client.http.get("/api/v1/bots", headers=client.auth).json():
        client.http.delete(f"/api/v1/bots/{bot['id']}", headers=client.auth)
