"""Authorization matrix: every operation of the published OpenAPI spec × every kind of caller.

Tenant A owns the objects; B is another client, admin a platform administrator (who has no
tenant), anonymous sends no token. Every operation must be classified in ROUTES: a route
added without its row here fails `test_every_operation_is_classified`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient

from tests.security.api_support import (
    API,
    BACKTEST_CONFIG,
    BOT_CONFIG,
    PROBLEM_JSON,
    cancel_queued_jobs,
    create_bot,
    create_strategy,
    finish_job,
    log_in,
    parked_client,
    strategy_source,
    submit_backtest,
)
from tests.support.admins import Admin, admin_headers, create_admin
from tests.support.api import Client, sign_up
from tests.support.invoices import issue_test_invoice

Caller = Literal["anonymous", "tenant_a", "tenant_b", "admin"]
CALLERS: tuple[Caller, ...] = ("anonymous", "tenant_a", "tenant_b", "admin")


@dataclass
class World:
    a: Client
    b: Client
    admin: Admin
    # Written into A's strategy, logs, result and archive: must never reach anyone else.
    marker: str
    sessions: dict[Caller, dict[str, str]] = field(default_factory=dict)

    def headers(self, http: TestClient, caller: Caller) -> dict[str, str]:
        """The caller's Authorization header, from a log-in kept until `forget`."""
        if caller == "anonymous":
            return {}
        if caller not in self.sessions:
            if caller == "admin":
                self.sessions[caller] = admin_headers(http, self.admin)
            else:
                self.sessions[caller] = log_in(http, *self.credentials(caller))
        return self.sessions[caller]

    def forget(self, caller: Caller) -> None:
        self.sessions.pop(caller, None)

    def credentials(self, caller: Caller) -> tuple[str, str]:
        if caller == "admin":
            return self.admin.email, self.admin.password
        client = self.b if caller == "tenant_b" else self.a
        return client.email, client.password


@dataclass
class Objects:
    """A's objects, fresh for each check: a strategy, a queued job, a finished job, a bot."""

    strategy_id: str
    strategy_name: str
    queued_job_id: str
    finished_job_id: str
    bot_id: str
    invoice_id: str

    @property
    def ids(self) -> tuple[str, ...]:
        return (
            self.strategy_id,
            self.queued_job_id,
            self.finished_job_id,
            self.bot_id,
            self.invoice_id,
        )


Body = Callable[[World, Objects, Caller], dict[str, Any]]


def _new_account(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    email = f"matrix-{secrets.token_hex(4)}@example.com"
    return {"email": email, "password": secrets.token_urlsafe(16), "display_name": "Matrix"}


def _credentials(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    if caller == "admin":
        return world.admin.login_body()  # with a second factor
    email, password = world.credentials(caller)
    return {"email": email, "password": password}


def _same_password(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    # Changing to the same password keeps the world's credentials valid for later checks.
    _, password = world.credentials(caller)
    return {"current_password": password, "new_password": password}


def _new_token(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    return {"name": "matrix", "scope": "read"}


def _someones_address(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    return {"email": f"nobody-{secrets.token_hex(4)}@example.com"}


def _forged_reset(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    return {"token": "forged", "new_password": secrets.token_urlsafe(16)}


def _new_strategy(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    name = f"M{secrets.token_hex(4)}"
    return {"name": name, "source": strategy_source(name)}


def _new_version(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    return {"source": strategy_source(objects.strategy_name, comment="version two")}


def _backtest_of_a(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    return {"kind": "backtest", "strategy_id": objects.strategy_id, "config": BACKTEST_CONFIG}


def _bot_of_a(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    name = f"m{secrets.token_hex(4)}"
    return {"name": name, "strategy_id": objects.strategy_id, "config": BOT_CONFIG}


def _rename(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    return {"name": f"r{secrets.token_hex(4)}"}


def _unknown_plan(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    return {"plan": "no-such-plan"}


def _private_identity(world: World, objects: Objects, caller: Caller) -> dict[str, Any]:
    return {
        "customer_type": "private",
        "legal_name": "Camille Martin",
        "address_line1": "1 rue de la Paix",
        "postcode": "75002",
        "city": "Paris",
        "country": "FR",
    }


@dataclass(frozen=True)
class Route:
    """Expected status per caller; `body` builds the request body, `job` picks A's job."""

    anonymous: int
    tenant_a: int
    tenant_b: int
    admin: int
    body: Body | None = None
    job: Literal["queued", "finished"] = "queued"
    public: bool = False
    revokes_session: bool = False

    def expected(self, caller: Caller) -> int:
        return int(getattr(self, caller))


def _public(status: int, body: Body) -> Route:
    return Route(status, status, status, status, body=body, public=True)


def _own_account(status: int, body: Body | None = None) -> Route:
    """Any signed-in user acting on their own account (admins included); both such routes
    revoke the session they are called with."""
    return Route(401, status, status, status, body=body, revokes_session=True)


def _tenant(
    a: int, b: int, body: Body | None = None, job: Literal["queued", "finished"] = "queued"
) -> Route:
    """Client resources: B gets 404 on A's objects, an admin 403 (no tenant)."""
    return Route(401, a, b, 403, body=body, job=job)


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/auth/signup"): _public(201, _new_account),
    ("POST", "/auth/token"): _public(200, _credentials),
    ("POST", "/auth/logout"): _own_account(204),
    ("POST", "/auth/password"): _own_account(204, _same_password),
    # Without its token (the query parameter), the link is refused whoever opens it.
    ("GET", "/auth/verify-email"): Route(422, 422, 422, 422, public=True),
    # Every caller's address is verified already: nothing to resend.
    ("POST", "/auth/verify-email/resend"): Route(401, 409, 409, 409),
    # The same answer whoever asks, whether or not the address has an account.
    ("POST", "/auth/password/forgot"): _public(202, _someones_address),
    ("POST", "/auth/password/reset"): _public(422, _forged_reset),
    # Personal tokens are a client's own: an administrator makes none.
    ("GET", "/auth/tokens"): Route(401, 200, 200, 200),
    ("POST", "/auth/tokens"): Route(401, 201, 201, 403, body=_new_token),
    ("DELETE", "/auth/tokens/{token_id}"): Route(401, 404, 404, 404),
    ("GET", "/account/export"): _tenant(200, 200),
    # Collections: B sees its own (empty) collection, never A's objects.
    ("GET", "/strategies"): _tenant(200, 200),
    ("POST", "/strategies"): _tenant(201, 201, _new_strategy),
    ("GET", "/strategies/{strategy_id}"): _tenant(200, 404),
    ("PUT", "/strategies/{strategy_id}"): _tenant(200, 404, _new_version),
    ("DELETE", "/strategies/{strategy_id}"): _tenant(204, 404),
    ("GET", "/strategies/{strategy_id}/versions"): _tenant(200, 404),
    # A's only version is the strategy's current code (and a job and a bot ran it): kept.
    ("DELETE", "/strategies/{strategy_id}/versions/{version}"): _tenant(409, 404),
    ("GET", "/jobs"): _tenant(200, 200),
    # A's strategy named in B's body: 404 as well.
    ("POST", "/jobs"): _tenant(202, 404, _backtest_of_a),
    ("GET", "/jobs/{job_id}"): _tenant(200, 404),
    ("GET", "/jobs/{job_id}/logs"): _tenant(200, 404, job="finished"),
    ("GET", "/jobs/{job_id}/result"): _tenant(200, 404, job="finished"),
    ("GET", "/jobs/{job_id}/archive"): _tenant(200, 404, job="finished"),
    # The finished job is a backtest: no parameter file, for its owner either (a hyperopt's
    # is fetched by its owner only in test_job_sandbox).
    ("GET", "/jobs/{job_id}/params"): _tenant(404, 404, job="finished"),
    ("POST", "/jobs/{job_id}/cancel"): _tenant(202, 404),
    ("GET", "/bots"): _tenant(200, 200),
    ("POST", "/bots"): _tenant(201, 404, _bot_of_a),
    ("GET", "/bots/{bot_id}"): _tenant(200, 404),
    ("PATCH", "/bots/{bot_id}"): _tenant(200, 404, _rename),
    ("DELETE", "/bots/{bot_id}"): _tenant(204, 404),
    # A's parked plan allows no running bot: A gets as far as the quota, B not even there.
    ("POST", "/bots/{bot_id}/start"): _tenant(429, 404),
    ("POST", "/bots/{bot_id}/restart"): _tenant(429, 404),
    ("POST", "/bots/{bot_id}/stop"): _tenant(202, 404),
    ("GET", "/bots/{bot_id}/logs"): _tenant(200, 404),
    ("GET", "/bots/{bot_id}/trades"): _tenant(200, 404),
    ("GET", "/billing/subscription"): _tenant(200, 200),
    # Each tenant reads and sets its own billing identity only.
    ("GET", "/billing/identity"): _tenant(200, 200),
    ("PUT", "/billing/identity"): _tenant(200, 200, _private_identity),
    ("GET", "/invoices"): _tenant(200, 200),
    ("GET", "/invoices/{invoice_id}.pdf"): _tenant(200, 404),
    # An unknown plan: refused before PayPal is asked anything.
    ("POST", "/billing/subscription"): _tenant(404, 404, _unknown_plan),
    # PayPal's redirect carries no token; without a subscription id it is refused alike.
    ("GET", "/billing/return"): Route(422, 422, 422, 422, public=True),
    ("GET", "/storage"): _tenant(200, 200),
    ("GET", "/plans"): Route(200, 200, 200, 200, public=True),
    ("GET", "/usage"): _tenant(200, 200),
    # Each tenant caps its own month (a cap A's matrix never reaches).
    ("PUT", "/usage/spending-cap"): _tenant(200, 200, lambda *_: {"cap_eur_ht": "50.00"}),
    # Billing alerts are the operators': an unknown alert is a 404 for them only.
    ("GET", "/admin/billing/alerts"): Route(401, 403, 403, 200),
    ("POST", "/admin/billing/alerts/{alert_id}/resolve"): Route(
        401, 403, 403, 404, body=lambda *_: {"resolution": "checked"}
    ),
    # Administrators only; the edit keeps the plan as it is.
    ("PATCH", "/admin/plans/{code}"): Route(
        401, 403, 403, 200, body=lambda *_: {"name": "Starter"}
    ),
    ("GET", "/admin/plans"): Route(401, 403, 403, 200),
    # An existing code: nothing is made.
    ("POST", "/admin/plans"): Route(
        401, 403, 403, 409, body=lambda *_: {"code": "starter", "name": "Starter"}
    ),
    # The operator's view of A; A is never suspended here (too short a reason, and no
    # suspension to lift): tests/integration/test_operator_suspension.py suspends.
    ("GET", "/admin/tenants"): Route(401, 403, 403, 200),
    ("GET", "/admin/tenants/{tenant_id}"): Route(401, 403, 403, 200),
    ("PUT", "/admin/tenants/{tenant_id}/suspension"): Route(
        401, 403, 403, 422, body=lambda *_: {"reason": "x"}
    ),
    ("DELETE", "/admin/tenants/{tenant_id}/suspension"): Route(401, 403, 403, 409),
    # Nor are A's quotas changed: no quota given, and no override to end.
    ("GET", "/admin/tenants/{tenant_id}/quotas"): Route(401, 403, 403, 200),
    ("PUT", "/admin/tenants/{tenant_id}/quotas/override"): Route(
        401,
        403,
        403,
        422,
        body=lambda *_: {"reason": "no quota", "ends_at": "2099-01-01T00:00:00Z"},
    ),
    ("DELETE", "/admin/tenants/{tenant_id}/quotas/override"): Route(401, 403, 403, 409),
    # What runs; the kill switches on A's finished job (nothing to stop) and its stopped bot.
    ("GET", "/admin/operations"): Route(401, 403, 403, 200),
    ("POST", "/admin/jobs/{job_id}/cancel"): Route(401, 403, 403, 409, job="finished"),
    ("POST", "/admin/bots/{bot_id}/stop"): Route(401, 403, 403, 202),
    # The month's figures and the accountant's exports.
    ("GET", "/admin/revenue/{month}"): Route(401, 403, 403, 200),
    ("GET", "/admin/revenue/{month}/accounting.csv"): Route(401, 403, 403, 200),
    ("GET", "/admin/revenue/{month}/sales-journal.csv"): Route(401, 403, 403, 200),
    # Every chain verified; the platform's chain.
    ("GET", "/admin/audit"): Route(401, 403, 403, 200),
    ("GET", "/admin/audit/{chain}"): Route(401, 403, 403, 200),
}


@pytest.fixture(scope="module")
def spec(http: TestClient) -> dict[str, Any]:
    response = http.get(f"{API}/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


@pytest.fixture(scope="module")
def world(http: TestClient) -> Iterator[World]:
    world = World(
        a=parked_client(http, "TenantA"),
        b=parked_client(http, "TenantB"),
        admin=create_admin(),
        marker=secrets.token_hex(12),
    )
    yield world
    for client in (world.a, world.b):
        cancel_queued_jobs(client.tenant_id)


@pytest.fixture(scope="module")
def invoice_id(world: World) -> str:
    return issue_test_invoice(world.a.tenant_id)


@pytest.fixture
def objects(http: TestClient, world: World, invoice_id: str) -> Objects:
    a = world.headers(http, "tenant_a")
    strategy_id, strategy_name = create_strategy(http, a, comment=world.marker)
    queued = submit_backtest(http, a, strategy_id)
    finished = submit_backtest(http, a, strategy_id)
    finish_job(
        finished,
        log=f"backtest of {world.marker}\n",
        summary={"marker": world.marker, "total_trades": 3},
        archive=world.marker.encode(),
    )
    bot = create_bot(http, a, strategy_id, log=f"bot of {world.marker}\n")
    return Objects(strategy_id, strategy_name, queued, finished, bot, invoice_id)


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path.removeprefix(API)): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }


def test_every_operation_is_classified(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    unclassified = sorted(set(operations) - set(ROUTES))
    stale = sorted(set(ROUTES) - set(operations))
    assert not unclassified, f"classify these operations in ROUTES: {unclassified}"
    assert not stale, f"ROUTES lists operations the API no longer has: {stale}"
    for key, operation in operations.items():
        # The spec's own security declaration agrees with the table.
        assert bool(operation.get("security")) is not ROUTES[key].public, key


def _url(
    spec: dict[str, Any], key: tuple[str, str], route: Route, objects: Objects, tenant_id: str
) -> str:
    values = {
        "strategy_id": objects.strategy_id,
        "version": "1",
        "job_id": objects.finished_job_id if route.job == "finished" else objects.queued_job_id,
        "bot_id": objects.bot_id,
        "invoice_id": objects.invoice_id,
        "code": "starter",
        "alert_id": "999999999",
        # Nobody's token: each caller may revoke only its own.
        "token_id": "00000000-0000-4000-8000-000000000000",
        "tenant_id": tenant_id,
        # The platform's: an account's chain names its objects, which the operator reads.
        "chain": "platform",
        "month": "2026-11",
    }
    path = key[1]
    for parameter in _operations(spec)[key].get("parameters", []):
        if parameter["in"] == "path":
            name = parameter["name"]
            assert name in values, f"no object of A to put in path parameter {name!r}"
            path = path.replace("{" + name + "}", values[name])
    assert "{" not in path, path
    return API + path


def _body(route: Route, world: World, objects: Objects, caller: Caller) -> Any:
    return None if route.body is None else route.body(world, objects, caller)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("key", list(ROUTES), ids=lambda key: f"{key[0]} {key[1]}")
def test_authorization_matrix(
    http: TestClient,
    spec: dict[str, Any],
    world: World,
    objects: Objects,
    key: tuple[str, str],
    caller: Caller,
) -> None:
    route = ROUTES[key]
    url = _url(spec, key, route, objects, world.a.tenant_id)
    response = http.request(
        key[0],
        url,
        json=_body(route, world, objects, caller),
        headers=world.headers(http, caller),
    )
    if route.revokes_session:
        world.forget(caller)
    expected = route.expected(caller)
    assert response.status_code == expected, (caller, key, response.text)
    content_type = response.headers.get("content-type", "")
    if response.status_code >= 400:
        assert content_type == PROBLEM_JSON, content_type
        assert response.json()["detail"], response.text
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    if caller != "tenant_a":
        # 404 details name the id the caller sent; nothing else of A may come back.
        assert world.marker not in response.text, (caller, key, response.text)
        if key[0] == "GET" and response.status_code == 200:
            for object_id in objects.ids:
                assert object_id not in response.text, (caller, key, response.text)


def test_the_matrix_leaves_a_objects_untouched_by_others(
    http: TestClient, world: World, objects: Objects
) -> None:
    """Writes by B and the admin on A's objects changed nothing."""
    others: tuple[Caller, ...] = ("tenant_b", "admin")
    for caller in others:
        headers = world.headers(http, caller)
        http.delete(f"{API}/strategies/{objects.strategy_id}", headers=headers)
        http.post(f"{API}/jobs/{objects.queued_job_id}/cancel", headers=headers)
        http.put(
            f"{API}/strategies/{objects.strategy_id}",
            json={"source": "class Evil: pass"},
            headers=headers,
        )
        http.delete(f"{API}/bots/{objects.bot_id}", headers=headers)
        http.patch(f"{API}/bots/{objects.bot_id}", json={"name": "taken"}, headers=headers)
    a = world.headers(http, "tenant_a")
    strategy = http.get(f"{API}/strategies/{objects.strategy_id}", headers=a)
    assert strategy.status_code == 200 and strategy.json()["version"] == 1
    assert world.marker in strategy.json()["source"]
    job = http.get(f"{API}/jobs/{objects.queued_job_id}", headers=a).json()
    assert job["status"] == "queued" and job["cancel_requested"] is False
    bot = http.get(f"{API}/bots/{objects.bot_id}", headers=a)
    assert bot.status_code == 200 and bot.json()["name"] != "taken"
    logs = http.get(f"{API}/bots/{objects.bot_id}/logs", headers=a).json()
    assert world.marker in logs["chunks"][0]["text"]


def test_a_new_tenant_sees_nothing(http: TestClient, world: World, objects: Objects) -> None:
    newcomer = sign_up(http, "Newcomer")
    for collection in ("strategies", "jobs", "bots"):
        response = http.get(f"{API}/{collection}", headers=newcomer.auth)
        assert response.status_code == 200 and response.json() == []
