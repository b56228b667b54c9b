"""What a hostile web page can make a victim's browser do: nothing.

The API authenticates with the Authorization header only (a browser never adds it on its
own, so there is nothing to forge cross-site), understands only JSON bodies, grants no CORS,
and every answer carries headers that forbid sniffing, framing, caching and running it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.security.api_support import (
    API,
    PROBLEM_JSON,
    cancel_queued_jobs,
    create_strategy,
    finish_job,
    parked_client,
    strategy_source,
    submit_backtest,
    unique_ip,
)
from tests.support.api import Client

FOREIGN_ORIGIN = "https://evil.example"


@pytest.fixture(scope="module")
def client(http: TestClient) -> Iterator[Client]:
    client = parked_client(http, "Browser")
    yield client
    cancel_queued_jobs(client.tenant_id)


@pytest.mark.parametrize(
    "cookie_name", ["access_token", "Authorization", "token", "session", "fta_session"]
)
def test_a_token_in_a_cookie_authenticates_nothing(
    http: TestClient, client: Client, cookie_name: str
) -> None:
    value = f"Bearer {client.token}" if cookie_name == "Authorization" else client.token
    cookie = {"Cookie": f"{cookie_name}={value}"}
    name = f"C{secrets.token_hex(4)}"
    reads = http.get(f"{API}/strategies", headers=cookie)
    writes = http.post(
        f"{API}/strategies", json={"name": name, "source": strategy_source(name)}, headers=cookie
    )
    for response in (reads, writes):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
    assert http.get(f"{API}/strategies", headers=client.auth).json() == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_bodies_a_cross_site_form_can_send_are_not_understood(
    http: TestClient, content_type: str
) -> None:
    """A form on another site can POST these types without a preflight: none creates an
    account or logs anyone in, even when the body is valid JSON."""
    email = f"csrf-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(16)
    signup = {"email": email, "password": password, "display_name": "Forged"}
    for path, body in (("signup", signup), ("token", {"email": email, "password": password})):
        response = http.post(
            f"{API}/auth/{path}",
            content=json.dumps(body),
            headers={"content-type": content_type, "origin": FOREIGN_ORIGIN},
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert "application/json" in response.json()["detail"]
    as_json = http.post(
        f"{API}/auth/token",
        json={"email": email, "password": password},
        headers={"X-Real-IP": unique_ip()},
    )
    assert as_json.status_code == 401  # no account was created


def _assert_no_cors(response: httpx.Response) -> None:
    granted = [name for name in response.headers if name.lower().startswith("access-control-")]
    assert not granted, (granted, dict(response.headers))


def test_other_origins_get_no_cors_grant(
    http: TestClient, client: Client, spec_paths: list[str]
) -> None:
    answer = http.get(f"{API}/strategies", headers={**client.auth, "Origin": FOREIGN_ORIGIN})
    assert answer.status_code == 200
    _assert_no_cors(answer)
    for path in spec_paths:
        preflight = http.options(
            path,
            headers={
                "Origin": FOREIGN_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 405, (path, preflight.text)
        assert preflight.headers["content-type"] == PROBLEM_JSON
        _assert_no_cors(preflight)


@pytest.fixture(scope="module")
def spec_paths(http: TestClient) -> list[str]:
    paths = http.get(f"{API}/openapi.json").json()["paths"]
    sample = {"{strategy_id}": "00000000-0000-4000-8000-000000000000", "{job_id}": "x"}
    concrete = []
    for path in paths:
        for placeholder, value in sample.items():
            path = path.replace(placeholder, value)
        concrete.append(path)
    return concrete


def _answers(http: TestClient, client: Client) -> dict[str, httpx.Response]:
    """One answer of each kind the API gives."""
    strategy_id, _ = create_strategy(http, client.auth)
    job_id = submit_backtest(http, client.auth, strategy_id)
    finish_job(job_id, log="done\n", summary={"total_trades": 0}, archive=b"PK\x05\x06")
    job = f"{API}/jobs/{job_id}"
    big = {"content-type": "application/json", "content-length": str(2 * 1024 * 1024)}
    return {
        "spec": http.get(f"{API}/openapi.json"),
        "docs page": http.get(f"{API}/docs"),
        "authenticated json": http.get(job, headers=client.auth),
        "job logs": http.get(f"{job}/logs", headers=client.auth),
        "job archive": http.get(f"{job}/archive", headers=client.auth),
        "no content": http.post(f"{API}/auth/logout", headers=_fresh_login(http, client)),
        "anonymous 401": http.get(f"{API}/jobs"),
        "unknown 404": http.get(f"{API}/nowhere"),
        "405": http.delete(f"{API}/jobs", headers=client.auth),
        "422": http.post(f"{API}/auth/signup", json={}),
        "413": http.post(f"{API}/auth/signup", headers=big),
    }


def _fresh_login(http: TestClient, client: Client) -> dict[str, str]:
    token = http.post(
        f"{API}/auth/token", json={"email": client.email, "password": client.password}
    )
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_every_kind_of_answer_carries_the_security_headers(
    http: TestClient, client: Client
) -> None:
    for kind, response in _answers(http, client).items():
        headers: Any = response.headers
        assert headers["x-content-type-options"] == "nosniff", kind
        assert headers["x-frame-options"] == "DENY", kind
        assert headers["referrer-policy"] == "no-referrer", kind
        assert headers["cross-origin-resource-policy"] == "same-origin", kind
        assert headers["cache-control"] == "no-store", kind
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp, kind
        if kind == "docs page":
            assert headers["content-type"].startswith("text/html")
            assert "object-src 'none'" in csp
        else:
            assert "default-src 'none'" in csp and "sandbox" in csp, kind
        if response.status_code >= 400:
            assert headers["content-type"] == PROBLEM_JSON, kind


def test_tenant_text_is_served_as_inert_text(http: TestClient, client: Client) -> None:
    answers = _answers(http, client)
    logs, archive = answers["job logs"], answers["job archive"]
    assert logs.headers["content-type"] == "text/plain; charset=utf-8"
    assert archive.headers["content-type"] == "application/octet-stream"
    assert archive.headers["content-disposition"].startswith("attachment;")
