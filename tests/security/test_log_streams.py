"""Live log streams are bounded per tenant and in all, against the real portal container.

The attack as it was done: one token opened 700 `follow=true` streams on its bot, each
polling the database every second, and other tenants' API calls went from 10 ms to 2.5 s.
Here the portal serves 4 streams per tenant and 6 in all (set low for the test): one token's
200 attempts get 4 streams and a 429 for the rest, another tenant is served meanwhile, the
total is held, and a closed stream frees its place.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.integration.strategies import source
from tests.support.docker_resources import DockerResources
from tests.support.portal_stack import PortalStack, portal_stack, query

pytestmark = pytest.mark.docker

PER_TENANT = 4
TOTAL = 6
ATTEMPTS = 200
BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "1m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


@dataclass(frozen=True)
class Account:
    auth: dict[str, str]
    logs_url: str


@pytest.fixture
def stack(docker_resources: DockerResources) -> Iterator[PortalStack]:
    env = {"FTA_LOG_STREAMS_PER_TENANT": str(PER_TENANT), "FTA_LOG_STREAMS_TOTAL": str(TOTAL)}
    with portal_stack(docker_resources, env) as running:
        yield running


def _account_with_a_running_bot(http: httpx.Client, stack: PortalStack) -> Account:
    """A verified client whose bot should run: without a worker it never reaches rest, so
    its log streams stay open."""
    email, password = f"streams-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(16)
    signup = {"email": email, "password": password, "display_name": "Streams"}
    assert http.post("/api/v1/auth/signup", json=signup).status_code == 201
    # No mail server here: the verification link waits in the outbox.
    ((link,),) = query(
        stack.database_url, "SELECT link FROM mail_outbox WHERE to_address = :to", to=email
    )
    parts = urlsplit(link)
    assert http.get(f"{parts.path}?{parts.query}").status_code == 200
    token = http.post("/api/v1/auth/token", json={"email": email, "password": password})
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    strategy = http.post(
        "/api/v1/strategies",
        json={"name": "EnterNow", "source": source("EnterNow")},
        headers=auth,
    )
    assert strategy.status_code == 201, strategy.text
    bot = http.post(
        "/api/v1/bots",
        json={"name": "streamed", "strategy_id": strategy.json()["id"], "config": BOT_CONFIG},
        headers=auth,
    )
    assert bot.status_code == 201, bot.text
    started = http.post(f"/api/v1/bots/{bot.json()['id']}/start", headers=auth)
    assert started.status_code == 202, started.text
    return Account(auth, f"/api/v1/bots/{bot.json()['id']}/logs?follow=true")


def _open(http: httpx.Client, streams: ExitStack, account: Account) -> httpx.Response:
    """Opens a stream; an accepted one stays open until `streams` closes."""
    response = streams.enter_context(http.stream("GET", account.logs_url, headers=account.auth))
    if response.status_code != 200:
        response.read()
    return response


def test_log_streams_are_capped_per_tenant_and_in_total(stack: PortalStack) -> None:
    limits = httpx.Limits(max_connections=ATTEMPTS + 20, max_keepalive_connections=0)
    timeout = httpx.Timeout(10, read=30)
    with httpx.Client(base_url=stack.portal_url, limits=limits, timeout=timeout) as http:
        attacker, other_attacker, victim = (
            _account_with_a_running_bot(http, stack) for _ in range(3)
        )
        with ExitStack() as attackers_streams, ExitStack() as others_streams:
            answers = [_open(http, attackers_streams, attacker) for _ in range(ATTEMPTS)]
            statuses = [answer.status_code for answer in answers]
            assert statuses.count(200) == PER_TENANT and statuses.count(429) == ATTEMPTS - 4
            assert all(
                a.headers["content-type"].startswith("text/event-stream")
                for a in answers
                if a.status_code == 200
            )
            refused = next(a for a in answers if a.status_code == 429)
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) > 0
            assert f"already follow {PER_TENANT} log streams" in refused.json()["detail"]

            # Another tenant is served as usual, stream included.
            listed = http.get("/api/v1/bots", headers=victim.auth)
            assert listed.status_code == 200, listed.text
            assert listed.elapsed.total_seconds() < 2, listed.elapsed
            assert _open(http, others_streams, victim).status_code == 200

            # 4 + 1 open: the service's total (6) leaves a single place.
            assert _open(http, others_streams, other_attacker).status_code == 200
            busy = _open(http, others_streams, other_attacker)
            assert busy.status_code == 503, busy.text
            assert busy.headers["content-type"] == "application/problem+json"
            assert int(busy.headers["retry-after"]) > 0

        # Closed streams give their places back (the portal notices within a poll or two).
        with ExitStack() as streams:
            deadline = time.monotonic() + 15
            while (answer := _open(http, streams, other_attacker)).status_code != 200:
                assert answer.status_code in (429, 503), answer.text
                assert time.monotonic() < deadline, "closed streams never gave their places back"
                time.sleep(0.5)
