"""100 concurrent log-ins with wrong passwords against the real portal container, under the
Compose memory limit (512 MiB): each password check holds argon2's 64 MiB, so unbounded they
killed the portal. The hashes running at once are bounded by that limit: the portal stays up,
its cgroup's peak stays well under the limit, and the excess is told to retry later."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.docker_resources import DockerResources
from tests.support.portal_stack import (
    PORTAL_MEMORY_BYTES,
    PortalStack,
    bad_login,
    concurrent_bad_logins,
    portal_stack,
)

pytestmark = pytest.mark.docker

CONCURRENT_LOGINS = 100
# What the portal may reach at most: the limit less a margin for what a burst allocates besides.
PEAK_CEILING = int(PORTAL_MEMORY_BYTES * 0.8)


@pytest.fixture
def stack(docker_resources: DockerResources) -> Iterator[PortalStack]:
    # As if every attempt came from its own address: the per-address throttle (which would
    # refuse most of them before any hash) is out of the way, the hash bound alone protects.
    with portal_stack(docker_resources, {"FTA_LOGIN_MAX_FAILURES_PER_IP": "10000"}) as running:
        yield running


def test_the_portal_survives_concurrent_bad_logins_within_its_memory(stack: PortalStack) -> None:
    answers = concurrent_bad_logins(stack.portal_url, CONCURRENT_LOGINS)

    state = stack.portal_state()
    assert state["Running"] and not state["OOMKilled"], state
    assert httpx.get(f"{stack.portal_url}/healthz", timeout=10).status_code == 200
    peak = stack.memory_peak()
    assert peak < PEAK_CEILING, f"peak {peak >> 20} MiB of a {PORTAL_MEMORY_BYTES >> 20} MiB limit"

    statuses = sorted({answer.status_code for answer in answers})
    assert statuses == [401, 503], statuses
    for busy in (answer for answer in answers if answer.status_code == 503):
        assert busy.headers["content-type"] == "application/problem+json"
        assert int(busy.headers["retry-after"]) >= 1
        assert "retry" in busy.json()["detail"]
    # Retrying as told gets the ordinary answer.
    assert bad_login(stack.portal_url).status_code == 401
