"""A client's X-Forwarded-For (or X-Real-IP) chooses neither its throttle key nor its audit
address: the real nginx image in front of the real portal container believes forwarded
addresses only from the front proxies the operator names (FTA_TRUSTED_PROXIES, none by
default)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.support.docker_resources import DockerResources, local_docker
from tests.support.portal_stack import (
    HARDENED,
    NGINX_IMAGE,
    PortalStack,
    gateway_of,
    nginx_in_front,
    portal_stack,
    query,
)

pytestmark = pytest.mark.docker

MAX_SIGNUPS_PER_ADDRESS = 2
MAX_FAILURES_PER_ADDRESS = 3


@pytest.fixture(scope="module")
def module_resources() -> Iterator[DockerResources]:
    client = local_docker()
    resources = DockerResources(client)
    try:
        yield resources
    finally:
        resources.cleanup()
        client.close()


@pytest.fixture(scope="module")
def stack(module_resources: DockerResources) -> Iterator[PortalStack]:
    limits = {
        "FTA_SIGNUP_MAX_PER_IP": str(MAX_SIGNUPS_PER_ADDRESS),
        "FTA_LOGIN_MAX_FAILURES_PER_IP": str(MAX_FAILURES_PER_ADDRESS),
    }
    with portal_stack(module_resources, limits) as running:
        yield running


def _forged() -> dict[str, str]:
    """Headers a client writes to pose as somebody else (documentation addresses)."""
    return {
        "X-Forwarded-For": f"203.0.113.{secrets.randbelow(250) + 1}",
        "X-Real-IP": f"198.51.100.{secrets.randbelow(250) + 1}",
    }


def _sign_up(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    body = {
        "email": f"xff-{secrets.token_hex(6)}@example.com",
        "password": secrets.token_urlsafe(16),
        "display_name": "Forger",
    }
    return http.post("/api/v1/auth/signup", json=body, headers=headers)


def _audited_addresses(stack: PortalStack, action: str) -> list[str | None]:
    rows = query(
        stack.database_url,
        "SELECT ip FROM audit_events WHERE action = :action ORDER BY id",
        action=action,
    )
    return [row.ip for row in rows]


def test_forged_headers_choose_neither_the_sign_up_count_nor_the_audit_address(
    module_resources: DockerResources, stack: PortalStack
) -> None:
    url = nginx_in_front(module_resources, stack, trusted_proxies="")
    peer = gateway_of(stack.portal)  # where a connection from this host comes from
    with httpx.Client(base_url=url, timeout=30) as http:
        answers = [_sign_up(http, _forged()) for _ in range(MAX_SIGNUPS_PER_ADDRESS + 2)]
    statuses = [answer.status_code for answer in answers]
    assert statuses == [201] * MAX_SIGNUPS_PER_ADDRESS + [429] * 2, statuses
    assert answers[-1].headers["content-type"] == "application/problem+json"
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert _audited_addresses(stack, "account.signup") == [peer] * MAX_SIGNUPS_PER_ADDRESS


def test_forged_headers_do_not_escape_the_login_throttle(
    module_resources: DockerResources, stack: PortalStack
) -> None:
    url = nginx_in_front(module_resources, stack, trusted_proxies="")
    peer = gateway_of(stack.portal)
    with httpx.Client(base_url=url, timeout=30) as http:
        statuses = [
            http.post(
                "/api/v1/auth/token",
                json={"email": f"nobody-{secrets.token_hex(4)}@example.com", "password": "x" * 12},
                headers=_forged(),
            ).status_code
            for _ in range(MAX_FAILURES_PER_ADDRESS + 2)
        ]
    assert statuses == [401] * MAX_FAILURES_PER_ADDRESS + [429] * 2, statuses
    keys = query(stack.database_url, "SELECT DISTINCT ip FROM login_failures")
    assert [row.ip for row in keys] == [peer]
    assert set(_audited_addresses(stack, "auth.failed.unknown")) == {peer}


def test_a_named_front_proxy_is_believed_for_the_address_it_added_only(
    module_resources: DockerResources, stack: PortalStack
) -> None:
    """With this host named as the front proxy, nginx takes the right-most address of
    X-Forwarded-For: the one the proxy appended, not what its client wrote before it."""
    peer = gateway_of(stack.portal)
    url = nginx_in_front(module_resources, stack, trusted_proxies=peer)
    client_wrote, proxy_saw = "198.51.100.77", "192.0.2.55"
    headers = {"X-Forwarded-For": f"{client_wrote}, {proxy_saw}", "X-Real-IP": client_wrote}
    with httpx.Client(base_url=url, timeout=30) as http:
        http.post(
            "/api/v1/auth/token",
            json={"email": f"proxied-{secrets.token_hex(4)}@example.com", "password": "x" * 12},
            headers=headers,
        )
    addresses = _audited_addresses(stack, "auth.failed.unknown")
    assert addresses[-1] == proxy_saw
    assert client_wrote not in addresses


@pytest.mark.parametrize(
    "value", ["10.0.0.1; include /etc/passwd", "10.0.0.1\nreal_ip_header X-Evil", "all"]
)
def test_nginx_refuses_a_trusted_proxy_that_is_not_an_address(
    module_resources: DockerResources, value: str
) -> None:
    container = module_resources.run(
        NGINX_IMAGE, None, environment={"FTA_TRUSTED_PROXIES": value}, **HARDENED
    )
    status = container.wait(timeout=60)
    assert status["StatusCode"] == 64, container.logs().decode(errors="replace")
    assert b"FTA_TRUSTED_PROXIES" in container.logs()


def test_nginx_limits_the_pages_log_in_forms_as_it_limits_the_apis(
    module_resources: DockerResources, stack: PortalStack
) -> None:
    """Password guessing through the log-in page meets nginx's per-address rate limit (30 a
    minute, bursts of 20) before the portal's own throttle."""
    url = nginx_in_front(module_resources, stack, "")
    with httpx.Client(base_url=url, timeout=30) as http:
        statuses = [
            http.post("/login", data={"email": "x@example.com", "password": "y"}).status_code
            for _ in range(40)
        ]
        # Refused by the portal (no CSRF token) until nginx refuses them all.
        assert set(statuses) == {403, 429}, statuses
        assert statuses.count(403) <= 21
        assert http.get("/").status_code == 200, "other pages are not limited"
