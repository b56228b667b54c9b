"""Sign-up, tokens, revocation and the error format, against a real Postgres."""

from __future__ import annotations

import secrets

from fastapi.testclient import TestClient

from tests.support.api import sign_up

PROBLEM = "application/problem+json"


def test_signup_then_token_then_authenticated_call(http: TestClient) -> None:
    client = sign_up(http)
    assert len(client.tenant_id) == 8 and client.tenant_id.isalnum()
    assert client.tenant_id == client.tenant_id.lower()
    response = http.get("/api/v1/strategies", headers=client.auth)
    assert response.status_code == 200
    assert response.json() == []


def test_duplicate_signup_is_a_conflict(http: TestClient) -> None:
    client = sign_up(http)
    response = http.post(
        "/api/v1/auth/signup",
        json={"email": client.email.upper(), "password": "another-password", "display_name": "x"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert "log in" in response.json()["detail"]


def test_short_password_and_bad_email_are_refused(http: TestClient) -> None:
    short = http.post(
        "/api/v1/auth/signup",
        json={"email": "a@example.com", "password": "short", "display_name": "x"},
    )
    assert short.status_code == 422
    assert "at least 10 characters" in short.json()["detail"]
    bad_email = http.post(
        "/api/v1/auth/signup",
        json={"email": "not-an-email", "password": "long-enough-pass", "display_name": "x"},
    )
    assert bad_email.status_code == 422
    assert bad_email.headers["content-type"] == PROBLEM


def test_malformed_json_and_unknown_fields(http: TestClient) -> None:
    malformed = http.post(
        "/api/v1/auth/signup", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422
    assert "not valid JSON" in malformed.json()["detail"]
    unknown = http.post(
        "/api/v1/auth/signup",
        json={
            "email": "u@example.com",
            "password": "long-enough",
            "display_name": "x",
            "role": "admin",
        },
    )
    assert unknown.status_code == 422
    assert "unknown field 'role'" in unknown.json()["detail"]


def test_wrong_password_and_unknown_user_answer_alike(http: TestClient) -> None:
    client = sign_up(http)
    wrong = http.post(
        "/api/v1/auth/token", json={"email": client.email, "password": "nope-nope-nope"}
    )
    unknown = http.post(
        "/api/v1/auth/token", json={"email": "ghost@example.com", "password": "nope-nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_logout_revokes_the_token(http: TestClient) -> None:
    client = sign_up(http)
    assert http.post("/api/v1/auth/logout", headers=client.auth).status_code == 204
    response = http.get("/api/v1/strategies", headers=client.auth)
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_password_change_revokes_every_session(http: TestClient) -> None:
    client = sign_up(http)
    second = http.post(
        "/api/v1/auth/token", json={"email": client.email, "password": client.password}
    ).json()["access_token"]
    new_password = secrets.token_urlsafe(16)
    response = http.post(
        "/api/v1/auth/password",
        json={"current_password": client.password, "new_password": new_password},
        headers=client.auth,
    )
    assert response.status_code == 204
    for token in (client.token, second):
        denied = http.get("/api/v1/strategies", headers={"Authorization": f"Bearer {token}"})
        assert denied.status_code == 401
    fresh = http.post("/api/v1/auth/token", json={"email": client.email, "password": new_password})
    assert fresh.status_code == 200


def test_missing_token_is_401_with_a_hint(http: TestClient) -> None:
    response = http.get("/api/v1/jobs")
    assert response.status_code == 401
    assert "/api/v1/auth/token" in response.json()["detail"]


def test_openapi_is_published(http: TestClient) -> None:
    spec = http.get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/auth/signup",
        "/api/v1/strategies/{strategy_id}",
        "/api/v1/jobs/{job_id}/result",
    ):
        assert path in spec["paths"]


def test_a_nul_character_is_refused_not_sent_to_the_database(http: TestClient) -> None:
    for path, body in (
        ("/api/v1/auth/token", {"email": "\x00", "password": "x"}),
        ("/api/v1/auth/token", {"email": "a@example.com", "password": "x", "otp": "1\x00"}),
        ("/api/v1/auth/password/forgot", {"email": "a\x00@example.com"}),
    ):
        response = http.post(path, json=body)
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "NUL" in response.text
