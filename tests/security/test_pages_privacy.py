"""The account's data page: no export or deletion without this browser's token, no export
without a log-in, no deletion without the password and the typed address, a deleted account
opens nothing any more; and one account's export never holds another's data."""

from __future__ import annotations

import io
import secrets
import zipfile

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.accounts.models import Tenant, User
from fta.db import session_scope
from tests.support.api import Client, sign_up, upload_strategy
from tests.support.browser import LivePortal
from tests.support.page_client import form_token, page_client

PASSWORD = "a long enough password"  # pragma: allowlist secret
API = "/api/v1"


def _signed_up(client: httpx.Client) -> str:
    """Signs the browser up (and so in); the account's address."""
    email = f"privacy-{secrets.token_hex(4)}@example.com"
    answer = client.post(
        "/signup",
        data={
            "csrf_token": form_token(client, "/signup"),
            "display_name": "Privacy",
            "email": email,
            "password": PASSWORD,
            "accept_terms": "true",
        },
    )
    assert answer.status_code == 303, answer.text
    return email


def test_the_export_form_needs_the_browsers_token(live_portal: LivePortal) -> None:
    with page_client(live_portal) as client:
        _signed_up(client)
        token = form_token(client, "/app/account/data")
        for data, headers in [
            ({}, {}),
            ({"csrf_token": "0" * 64}, {}),
            ({"csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
        ]:
            refused = client.post("/app/account/data/export", data=data, headers=headers)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("text/html")
        sent = client.post("/app/account/data/export", data={"csrf_token": token})
        assert sent.status_code == 200, sent.text
        assert sent.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(sent.content)) as archive:
            assert "account.json" in archive.namelist()


def test_a_stranger_is_sent_to_log_in(live_portal: LivePortal) -> None:
    with page_client(live_portal) as client:
        token = form_token(client, "/login")
        for answer in (
            client.get("/app/account/data"),
            client.post("/app/account/data/export", data={"csrf_token": token}),
        ):
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/login?next=")


def test_the_api_export_needs_a_token(http: TestClient) -> None:
    assert http.get(f"{API}/account/export").status_code == 401
    bogus = {"Authorization": "Bearer not-a-token"}
    assert http.get(f"{API}/account/export", headers=bogus).status_code == 401


def _names_and_text(client: Client) -> tuple[list[str], bytes]:
    answer = client.http.get(f"{API}/account/export", headers=client.auth)
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        names = archive.namelist()
        return names, b"\n".join(archive.read(name) for name in names)


def test_one_accounts_export_never_holds_anothers(http: TestClient) -> None:
    first, second = sign_up(http, "First"), sign_up(http, "Second")
    first_strategy = upload_strategy(first, "Quick")
    second_strategy = upload_strategy(second, "RsiQuick")
    for own, other, own_strategy, other_strategy in (
        (first, second, first_strategy, second_strategy),
        (second, first, second_strategy, first_strategy),
    ):
        names, text = _names_and_text(own)
        assert own.email.encode() in text and own_strategy.encode() in text
        for mark in (other.tenant_id, other.email, other_strategy):
            assert mark.encode() not in text and not any(mark in name for name in names)


def _status_of(email: str) -> str:
    with session_scope() as session:
        tenant_id = session.scalars(select(User.tenant_id).where(User.email == email)).one()
        return session.get_one(Tenant, tenant_id).status


def test_the_delete_form_needs_the_browsers_token(live_portal: LivePortal) -> None:
    with page_client(live_portal) as client:
        email = _signed_up(client)
        token = form_token(client, "/app/account/data")
        form = {"password": PASSWORD, "confirmation": email}
        for data, headers in [
            (form, {}),
            ({**form, "csrf_token": "0" * 64}, {}),
            ({**form, "csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
        ]:
            refused = client.post("/app/account/data/delete", data=data, headers=headers)
            assert refused.status_code == 403, refused.text
        assert _status_of(email) == "active"
        assert client.get("/app/account/data").status_code == 200


def test_a_wrong_password_or_confirmation_deletes_nothing(live_portal: LivePortal) -> None:
    with page_client(live_portal) as client:
        email = _signed_up(client)
        token = form_token(client, "/app/account/data")
        for password, confirmation, message in [
            ("not the password", email, "Mot de passe incorrect"),
            (PASSWORD, "other@example.com", "saisissez exactement"),
            (PASSWORD, "", "saisissez exactement"),
        ]:
            refused = client.post(
                "/app/account/data/delete",
                data={"csrf_token": token, "password": password, "confirmation": confirmation},
            )
            assert refused.status_code == 400, refused.text
            assert message in refused.text
        assert _status_of(email) == "active"
        # Still signed in: the page answers, the session cookie was left alone.
        assert client.get("/app/account/data").status_code == 200


def test_a_deletion_logs_out_and_the_old_cookie_opens_nothing(live_portal: LivePortal) -> None:
    with page_client(live_portal) as client:
        email = _signed_up(client)
        token = form_token(client, "/app/account/data")
        cookie = next(c.value for c in client.cookies.jar if c.name == "fta_session")
        assert cookie
        done = client.post(
            "/app/account/data/delete",
            data={"csrf_token": token, "password": PASSWORD, "confirmation": email},
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/app/account/data/deleted"
        forgotten = done.headers["set-cookie"].lower()
        assert forgotten.startswith("fta_session=") and "max-age=0" in forgotten
        assert _status_of(email) == "erasing"
    with page_client(live_portal) as stolen:
        stolen.cookies.set("fta_session", cookie)
        for path in ("/app", "/app/account/data"):
            answer = stolen.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
        login = stolen.post(
            "/login",
            data={"csrf_token": form_token(stolen, "/login"), "email": email, "password": PASSWORD},
        )
        assert login.status_code == 400 and "fta_session" not in login.headers.get("set-cookie", "")
