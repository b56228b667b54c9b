"""The bots pages against another tenant, a forged form and hostile text: another client's
bot, its live log and its buttons answer 404 and change nothing; a POST without this
browser's CSRF token is refused; markup in a name or a log line stays text, on the page and
when it arrives over the event stream; the page's stream counts against the account's
stream limit like the API's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from fta.bots import service as bots
from fta.bots.models import Bot
from fta.db import session_scope
from fta.web.streams import stream_registry
from tests.support.api import Client, leave_nothing_waiting, sign_up, upload_strategy
from tests.support.browser import LivePortal, log_in, open_page
from tests.support.page_client import form_token, log_in_form, page_client

PAYLOAD = '"><img src=x onerror="alert(document.domain)"><script>alert(1)</script>'
CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


@dataclass
class Tenant:
    client: Client
    web: httpx.Client
    bot_id: str

    def token(self, path: str) -> str:
        return form_token(self.web, path)


def _tenant(http: TestClient, live_portal: LivePortal, name: str) -> Tenant:
    client = sign_up(http, name)
    strategy_id = upload_strategy(client)
    created = http.post(
        "/api/v1/bots",
        json={"name": f"{name.lower()}-bot", "strategy_id": strategy_id, "config": CONFIG},
        headers=client.auth,
    )
    assert created.status_code == 201, created.text
    web = page_client(live_portal)
    log_in_form(web, client.email, client.password)
    return Tenant(client, web, created.json()["id"])


@pytest.fixture
def tenants(http: TestClient, live_portal: LivePortal) -> Iterator[tuple[Tenant, Tenant]]:
    alice, bob = _tenant(http, live_portal, "Alice"), _tenant(http, live_portal, "Bob")
    yield alice, bob
    for tenant in (alice, bob):
        tenant.web.close()
        leave_nothing_waiting(tenant.client)


def _stored(bot_id: str) -> Bot:
    with session_scope() as session:
        bot = session.get(Bot, uuid.UUID(bot_id))
        assert bot is not None
        session.expunge(bot)
        return bot


def test_another_tenants_bot_pages_stream_and_buttons_answer_404(
    tenants: tuple[Tenant, Tenant],
) -> None:
    alice, bob = tenants
    theirs = f"/app/bots/{bob.bot_id}"
    for path in (theirs, f"{theirs}/edit", f"{theirs}/state", f"{theirs}/logs/stream"):
        answer = alice.web.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "bob-bot" not in answer.text
    # Well-formed posts, with Alice's own valid token: still nothing of Bob's.
    token = alice.token(f"/app/bots/{alice.bot_id}")
    for action in ("start", "stop", "restart", "delete"):
        answer = alice.web.post(f"{theirs}/{action}", data={"csrf_token": token})
        assert answer.status_code == 404, action
    edit = {"csrf_token": token, "name": "taken-over", "strategy_id": str(uuid.uuid4()),
            "stake_currency": "USDT", "pairs": ["BTC/USDT"], "timeframe": "5m",
            "stake_amount": "1", "max_open_trades": "1", "dry_run_wallet": "10"}  # fmt: skip
    assert alice.web.post(f"{theirs}/edit", data=edit).status_code == 404
    bot = _stored(bob.bot_id)
    assert (bot.name, bot.desired_state, bot.deleted_at) == ("bob-bot", "stopped", None)
    # Not even listed, nor reachable with a made-up or malformed id.
    assert "bob-bot" not in alice.web.get("/app/bots").text
    assert alice.web.get(f"/app/bots/{uuid.uuid4()}").status_code == 404
    assert alice.web.get("/app/bots/not-an-id/logs/stream").status_code == 404
    # A stranger is sent to log in, the stream included.
    with httpx.Client(base_url=str(alice.web.base_url)) as stranger:
        answer = stranger.get(f"{theirs}/logs/stream")
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_a_post_without_this_browsers_token_is_refused(tenants: tuple[Tenant, Tenant]) -> None:
    alice, _ = tenants
    mine = f"/app/bots/{alice.bot_id}"
    token = alice.token(mine)
    for data, headers in [
        ({}, {}),
        ({"csrf_token": "0" * 64}, {}),
        ({"csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
    ]:
        for action in ("start", "delete"):
            refused = alice.web.post(f"{mine}/{action}", data=data, headers=headers)
            assert refused.status_code == 403, (action, data, headers)
    bot = _stored(alice.bot_id)
    assert bot.desired_state == "stopped" and bot.deleted_at is None
    # The same post with the token goes through.
    assert alice.web.post(f"{mine}/start", data={"csrf_token": token}).status_code == 303
    assert _stored(alice.bot_id).desired_state == "running"


def test_markup_typed_in_the_form_comes_back_as_text(tenants: tuple[Tenant, Tenant]) -> None:
    alice, _ = tenants
    strategy_id = upload_strategy(alice.client, "EnterNow")
    answer = alice.web.post(
        "/app/bots/new",
        data={"csrf_token": alice.token("/app/bots/new"), "name": PAYLOAD,
              "strategy_id": strategy_id, "stake_currency": "USDT", "pairs": ["BTC/USDT"],
              "timeframe": "5m", "stake_amount": PAYLOAD, "max_open_trades": "1",
              "dry_run_wallet": "10"},
    )  # fmt: skip
    assert answer.status_code == 400
    assert "<img src=x" not in answer.text and "<script>alert(1)" not in answer.text
    assert (
        'value="&#34;&gt;&lt;img src=x onerror=&#34;alert(document.domain)&#34;&gt;' in answer.text
    )


def test_the_page_stream_counts_against_the_accounts_stream_limit(
    tenants: tuple[Tenant, Tenant],
) -> None:
    alice, bob = tenants
    registry = stream_registry()
    held = [registry.acquire(alice.client.tenant_id) for _ in range(registry.per_tenant)]
    try:
        refused = alice.web.get(f"/app/bots/{alice.bot_id}/logs/stream")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        # Another account is not held back by Alice's streams.
        with bob.web.stream("GET", f"/app/bots/{bob.bot_id}/logs/stream") as served:
            assert served.status_code == 200
            assert served.headers["content-type"].startswith("text/event-stream")
    finally:
        for lease in held:
            lease.release()


def test_markup_in_a_log_line_stays_text_on_the_page_and_live(
    browser: Browser, live_portal: LivePortal, tenants: tuple[Tenant, Tenant]
) -> None:
    alice, _ = tenants
    bot_id = uuid.UUID(alice.bot_id)
    with session_scope() as session:
        bots.append_log(session, bot_id, f"before {PAYLOAD}\n")
    # A bot that should run stays followed: no worker here, so it never comes to rest.
    alice.web.post(
        f"/app/bots/{bot_id}/start", data={"csrf_token": alice.token(f"/app/bots/{bot_id}")}
    )
    page, problems = open_page(browser)
    log_in(page, live_portal, alice.client.email, alice.client.password)
    page.goto(f"{live_portal.url}/app/bots/{bot_id}")
    log = page.locator("#log")
    expect(log).to_contain_text(f"before {PAYLOAD}")
    expect(page.locator("[data-log-status]")).to_have_text("en direct")
    with session_scope() as session:
        bots.append_log(session, bot_id, f"live {PAYLOAD}\n")
    expect(log.locator("span.arrived")).to_have_text(f"live {PAYLOAD}\n")
    assert log.locator("img, script").count() == 0
    assert page.locator("main img").count() == 0
    assert problems.clean(), problems
