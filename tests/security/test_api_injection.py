"""Stored XSS and path traversal through every free-text field, name and id of the API.

Markup is stored as data and comes back only inside JSON (with <, > and & escaped) or as
inert text/plain; traversal strings are refused as invalid names or unknown ids, never
reach a file, and never cause a 500.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.accounts.models import Tenant
from fta.db import session_scope
from tests.security.api_support import (
    API,
    BACKTEST_CONFIG,
    PROBLEM_JSON,
    cancel_queued_jobs,
    create_bot,
    create_strategy,
    finish_job,
    parked_client,
    strategy_source,
    submit_backtest,
)
from tests.support.api import Client

XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg/onload=alert(1)>",
    "javascript:alert(1)//",
    "</textarea><iframe src=//evil.example>",
    "{{7*7}}${7*7}<%= 7*7 %>",
    "&lt;script&gt;&amp;",
]
# Escaped forms would be harmless: these raw fragments must never be sent back.
RAW_MARKUP = ("<script", "<img", "<svg", "<iframe", "</textarea")
TRAVERSAL = [
    "../../etc/passwd",
    "..",
    "../",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "..%5c..%5cwindows%5cwin.ini",
    "....//....//etc/passwd",
    "%2Fetc%2Fpasswd",
    "..%00",
    "..%c0%af..%c0%afetc%c0%afpasswd",
    "%2e%2e",
]
FILE_CONTENT = ("root:x:0:0", "[extensions]", "daemon:")


@pytest.fixture(scope="module")
def client(http: TestClient) -> Iterator[Client]:
    client = parked_client(http, "Injection")
    yield client
    cancel_queued_jobs(client.tenant_id)


def _assert_json_without_markup(response: httpx.Response) -> None:
    content_type = response.headers["content-type"]
    assert content_type in ("application/json", PROBLEM_JSON), content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    for fragment in RAW_MARKUP:
        assert fragment not in response.text, response.text


def _assert_refused_cleanly(response: httpx.Response, allowed: tuple[int, ...]) -> None:
    assert response.status_code in allowed, (response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM_JSON, response.text
    assert response.json()["detail"]
    for content in FILE_CONTENT:
        assert content not in response.text


# --- stored XSS ----------------------------------------------------------------------------


@pytest.mark.parametrize("payload", XSS)
def test_markup_in_a_display_name_is_stored_as_data(http: TestClient, payload: str) -> None:
    email = f"xss-{secrets.token_hex(4)}@example.com"
    response = http.post(
        f"{API}/auth/signup",
        json={"email": email, "password": secrets.token_urlsafe(16), "display_name": payload},
    )
    assert response.status_code == 201, response.text
    _assert_json_without_markup(response)
    with session_scope() as session:
        stored = session.scalars(
            select(Tenant.display_name).where(Tenant.id == response.json()["tenant_id"])
        ).one()
    assert stored == payload  # kept verbatim: escaping is the output's job


@pytest.mark.parametrize("payload", XSS)
def test_markup_in_a_strategy_name_is_refused(
    http: TestClient, client: Client, payload: str
) -> None:
    response = http.post(
        f"{API}/strategies",
        json={"name": payload, "source": strategy_source("Valid")},
        headers=client.auth,
    )
    assert response.status_code == 422, response.text
    _assert_json_without_markup(response)


def test_markup_in_a_strategy_source_round_trips_as_escaped_json(
    http: TestClient, client: Client
) -> None:
    name = f"X{secrets.token_hex(4)}"
    source = strategy_source(name, comment=" ".join(XSS)) + "".join(
        f"\nPAYLOAD_{index} = {payload!r}" for index, payload in enumerate(XSS)
    )
    created = http.post(
        f"{API}/strategies", json={"name": name, "source": source}, headers=client.auth
    )
    assert created.status_code == 201, created.text
    strategy_id = created.json()["id"]
    version = http.put(
        f"{API}/strategies/{strategy_id}", json={"source": source + "\n"}, headers=client.auth
    )
    assert version.status_code == 200
    for response in (
        http.get(f"{API}/strategies/{strategy_id}", headers=client.auth),
        http.get(f"{API}/strategies", headers=client.auth),
    ):
        assert response.status_code == 200
        _assert_json_without_markup(response)
    detail = http.get(f"{API}/strategies/{strategy_id}", headers=client.auth).json()
    assert detail["source"] == source + "\n"  # escaping is lossless


@pytest.mark.parametrize(
    "change",
    [
        {"pairs": [f"{XSS[0]}/USDT"]},
        {"pairs": [XSS[1]]},
        {"timerange": XSS[2]},
        {"timeframe": XSS[0]},
        {"exchange": XSS[1]},
        {XSS[0]: "value"},
        {"stake_amount": XSS[4]},
    ],
    ids=["pair base", "pair", "timerange", "timeframe", "exchange", "option name", "stake"],
)
def test_markup_in_job_config_strings_is_refused_as_json(
    http: TestClient, client: Client, change: dict[str, Any]
) -> None:
    strategy_id, _ = create_strategy(http, client.auth)
    response = http.post(
        f"{API}/jobs",
        json={"kind": "backtest", "strategy_id": strategy_id, "config": BACKTEST_CONFIG | change},
        headers=client.auth,
    )
    assert response.status_code == 422, response.text
    _assert_json_without_markup(response)


def test_markup_written_by_a_job_comes_back_inert(http: TestClient, client: Client) -> None:
    """Logs, results and archives are written by tenant code: the worker's output path."""
    strategy_id, _ = create_strategy(http, client.auth)
    job_id = submit_backtest(http, client.auth, strategy_id)
    markup = "\n".join(XSS)
    finish_job(job_id, log=markup, summary={"note": markup}, archive=markup.encode())
    logs = http.get(f"{API}/jobs/{job_id}/logs", headers=client.auth)
    assert logs.headers["content-type"] == "text/plain; charset=utf-8"
    assert logs.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in logs.headers["content-security-policy"]
    assert logs.text == markup
    result = http.get(f"{API}/jobs/{job_id}/result", headers=client.auth)
    _assert_json_without_markup(result)
    assert result.json()["note"] == markup
    archive = http.get(f"{API}/jobs/{job_id}/archive", headers=client.auth)
    assert archive.headers["content-type"] == "application/octet-stream"
    assert archive.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize("payload", XSS)
def test_markup_in_a_bot_name_is_refused(http: TestClient, client: Client, payload: str) -> None:
    strategy_id, _ = create_strategy(http, client.auth)
    response = http.post(
        f"{API}/bots",
        json={"name": payload, "strategy_id": strategy_id, "config": {"pairs": ["BTC/USDT"]}},
        headers=client.auth,
    )
    assert response.status_code == 422, response.text
    _assert_json_without_markup(response)


def test_markup_written_by_a_bot_comes_back_escaped(http: TestClient, client: Client) -> None:
    strategy_id, _ = create_strategy(http, client.auth)
    markup = "\n".join(XSS)
    bot_id = create_bot(http, client.auth, strategy_id, log=markup)
    logs = http.get(f"{API}/bots/{bot_id}/logs", headers=client.auth)
    _assert_json_without_markup(logs)
    assert logs.json()["chunks"][0]["text"] == markup
    stream = http.get(f"{API}/bots/{bot_id}/logs?follow=true", headers=client.auth)
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "sandbox" in stream.headers["content-security-policy"]
    assert stream.headers["x-content-type-options"] == "nosniff"


# --- path traversal ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def operations(http: TestClient) -> list[tuple[str, str]]:
    """Every operation with a path parameter, from the published spec."""
    paths = http.get(f"{API}/openapi.json").json()["paths"]
    return [
        (method.upper(), path)
        for path, item in paths.items()
        for method, operation in item.items()
        if any(p["in"] == "path" for p in operation.get("parameters", []))
    ]


@pytest.mark.parametrize("payload", TRAVERSAL)
def test_traversal_in_every_path_parameter(
    http: TestClient, client: Client, operations: list[tuple[str, str]], payload: str
) -> None:
    assert operations
    for method, template in operations:
        path = template
        for name in ("{strategy_id}", "{job_id}", "{bot_id}", "{code}"):
            path = path.replace(name, payload)
        body = {"source": strategy_source("X")} if method == "PUT" else None
        response = http.request(method, path, json=body, headers=client.auth)
        # A client is refused administrators' routes (or matches no route at all).
        refusals = (403, 404) if "/admin/" in template else (404, 405, 422)
        _assert_refused_cleanly(response, refusals)


@pytest.mark.parametrize("payload", TRAVERSAL)
def test_traversal_in_a_strategy_name(http: TestClient, client: Client, payload: str) -> None:
    response = http.post(
        f"{API}/strategies",
        json={"name": payload, "source": strategy_source("X")},
        headers=client.auth,
    )
    _assert_refused_cleanly(response, (422,))


@pytest.mark.parametrize(
    "change",
    [
        {"pairs": ["../x/USDT"]},
        {"pairs": ["../../etc/passwd"]},
        {"pairs": ["BTC/../../USDT"]},
        {"pairs": ["BTC/USDT/../../../etc"]},
        {"pairs": ["..%2F..%2Fetc/USDT"]},
        {"pairs": ["BTC\\..\\..\\x/USDT"]},
        {"exchange": "../binance"},
        {"timeframe": "../5m"},
        {"timerange": "../20240101-20240201"},
        {"datadir": "/etc"},
        {"user_data_dir": "../../"},
        {"strategy_path": "/"},
        {"exportfilename": "../../../tmp/x"},
    ],
    ids=lambda change: f"{next(iter(change))}={next(iter(change.values()))}",
)
@pytest.mark.parametrize("kind", ["backtest", "download-data"])
def test_traversal_in_job_config(
    http: TestClient, client: Client, change: dict[str, Any], kind: str
) -> None:
    config = BACKTEST_CONFIG | change
    if kind == "download-data":
        config = {k: v for k, v in config.items() if k not in ("stake_amount", "max_open_trades")}
    strategy_id = create_strategy(http, client.auth)[0] if kind == "backtest" else None
    response = http.post(
        f"{API}/jobs",
        json={"kind": kind, "strategy_id": strategy_id, "config": config},
        headers=client.auth,
    )
    _assert_refused_cleanly(response, (422,))


def test_a_traversal_id_that_is_a_valid_uuid_is_just_unknown(
    http: TestClient, client: Client
) -> None:
    unknown = uuid.uuid4()
    for path in (f"strategies/{unknown}", f"jobs/{unknown}/logs", f"jobs/{unknown}/archive"):
        _assert_refused_cleanly(http.get(f"{API}/{path}", headers=client.auth), (404,))
