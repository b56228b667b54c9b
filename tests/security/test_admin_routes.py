"""Every route of the operator's console and of the admin API, read from the application's
route table (a new one cannot be left out), refuses a client and an administrator without
two-factor log-in: 403 or 404, and nothing changes. An administrator with it gets through."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from fta.accounts.models import Tenant, TenantStatus
from fta.db import session_scope
from tests.support.admins import Admin, admin_headers, create_admin
from tests.support.api import Client, sign_up
from tests.support.browser import LivePortal
from tests.support.page_client import form_token, log_in_form, page_client

ADMIN_PREFIXES = ("/admin", "/api/v1/admin")
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
# Whatever any admin route may read from its body: valid, so that only the caller is judged.
BODY = {"reason": "a reason long enough", "resolution": "checked", "name": "Starter"}


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes as served, with their full paths: FastAPI keeps an included router as one
    entry that lists its own (the table test below fails if this stops finding them)."""
    for route in routes:
        included = getattr(route, "effective_candidates", None)
        yield from _routes(included()) if included is not None else (route,)


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route under the admin prefixes, pages and API."""
    found = []
    for route in _routes(app.routes):
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None)
        if path.startswith(ADMIN_PREFIXES) and methods:  # a mount has no methods
            found.extend((method, path) for method in sorted(set(methods) - {"HEAD"}))
    return found


@dataclass
class Caller:
    """A signed-in caller, both ways: a bearer token for the API, a browser for pages."""

    name: str
    api: dict[str, str]
    pages: httpx.Client


@pytest.fixture(scope="module")
def victim(http: TestClient) -> Client:
    return sign_up(http, "Victim")


def _caller(
    name: str, live_portal: LivePortal, api: dict[str, str], email: str, password: str
) -> Iterator[Caller]:
    with page_client(live_portal) as pages:
        log_in_form(pages, email, password)
        yield Caller(name, api, pages)


@pytest.fixture(scope="module", params=["client", "administrator without two-factor log-in"])
def caller(
    request: pytest.FixtureRequest, http: TestClient, live_portal: LivePortal
) -> Iterator[Caller]:
    if request.param == "client":
        client = sign_up(http, "Curious")
        yield from _caller(request.param, live_portal, client.auth, client.email, client.password)
    else:
        plain: Admin = create_admin(with_two_factor=False)
        headers = admin_headers(http, plain)
        yield from _caller(request.param, live_portal, headers, plain.email, plain.password)


def _path(template: str, victim: Client) -> str:
    values = {
        "tenant_id": victim.tenant_id,
        "chain": victim.tenant_id,
        "code": "starter",
        "alert_id": "1",
        "month": "2026-11",
        "job_id": str(uuid.uuid4()),
        "bot_id": str(uuid.uuid4()),
    }
    path = template
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"give the route's path parameter a value: {template}"
    return path


def test_the_table_holds_the_console_and_the_admin_api(live_portal: LivePortal) -> None:
    found = admin_routes(live_portal.app)
    assert ("GET", "/admin") in found
    assert ("POST", "/admin/tenants/{tenant_id}/suspend") in found
    assert ("PUT", "/api/v1/admin/tenants/{tenant_id}/suspension") in found
    assert ("PATCH", "/api/v1/admin/plans/{code}") in found


def test_every_admin_route_refuses_the_caller(
    live_portal: LivePortal, caller: Caller, victim: Client
) -> None:
    answers = {}
    for method, template in admin_routes(live_portal.app):
        path = _path(template, victim)
        if template.startswith("/api/"):
            response = caller.pages.request(
                method, path, json=None if method in SAFE else BODY, headers=caller.api,
                cookies={},
            )  # fmt: skip
        elif method in SAFE:
            response = caller.pages.request(method, path)
        else:
            token = form_token(caller.pages, "/app/account/security")
            response = caller.pages.request(method, path, data={"csrf_token": token, **BODY})
        answers[(method, template)] = response.status_code
    assert answers and all(status in (403, 404) for status in answers.values()), answers
    with session_scope() as session:
        tenant = session.get(Tenant, victim.tenant_id)
        assert tenant is not None
        assert tenant.status == TenantStatus.ACTIVE and tenant.suspension_reason is None


def test_an_administrator_with_two_factor_log_in_gets_through(
    http: TestClient, live_portal: LivePortal, victim: Client
) -> None:
    headers = admin_headers(http, create_admin())
    for method, template in admin_routes(live_portal.app):
        if method in SAFE and template.startswith("/api/"):
            response = http.get(_path(template, victim), headers=headers)
            assert response.status_code == 200, (template, response.text)
