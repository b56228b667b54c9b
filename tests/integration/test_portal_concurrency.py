"""Many page and API requests at once: the portal answers them all, however many more there
are than database connections or worker threads.

A request's transaction keeps its connection between the threads that run its dependencies,
its route and its commit; with more requests than that, every thread could end up waiting for
a connection that only a thread could give back. 50 dashboard requests at once stalled the
portal that way until the pool's timeout (30 s), then failed.
"""

from __future__ import annotations

import asyncio

import httpx
from fastapi.testclient import TestClient

from fta.db import POOL_CONNECTIONS
from fta.web.session_cookie import SESSION_COOKIE
from tests.support.api import sign_up
from tests.support.browser import LivePortal

# Well past the pool's connections and the thread pool's 40 threads.
AT_ONCE = 60
# Far below the pool's timeout: a stalled portal fails here rather than after 30 s.
ANSWER_SECONDS = 20.0


async def _all_at_once(url: str, headers: dict[str, str]) -> list[int]:
    limits = httpx.Limits(max_connections=AT_ONCE)
    async with httpx.AsyncClient(limits=limits, timeout=ANSWER_SECONDS) as client:
        answers = await asyncio.gather(
            *(client.get(url, headers=headers) for _ in range(AT_ONCE)), return_exceptions=True
        )
    return [a.status_code if isinstance(a, httpx.Response) else 0 for a in answers]


def test_more_requests_than_connections_and_threads_are_all_answered(
    http: TestClient, live_portal: LivePortal
) -> None:
    assert AT_ONCE > POOL_CONNECTIONS
    client = sign_up(http, "Crowd")
    dashboard = asyncio.run(
        _all_at_once(f"{live_portal.url}/app", {"Cookie": f"{SESSION_COOKIE}={client.token}"})
    )
    assert dashboard == [200] * AT_ONCE
    jobs = asyncio.run(_all_at_once(f"{live_portal.url}/api/v1/jobs", client.auth))
    assert jobs == [200] * AT_ONCE
