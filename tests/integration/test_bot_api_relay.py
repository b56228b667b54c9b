"""A bot's own freqtrade API through the portal, as its owner's tools use it: freqtrade's
official client (`FtRestClient`) pointed at `<portal>/bots/<id>`, against the real portal on
loopback, the relay in the real gateway container, and real freqtrade in a hardened bot
container (the sandbox's worker).

The tests of this module run in order on one running bot.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from freqtrade_client import FtRestClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from fta.bots.models import Bot
from fta.db import session_scope
from tests.integration.strategies import source
from tests.support.api import Client, sign_up
from tests.support.browser import LivePortal
from tests.support.sandbox import Sandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "1m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


@dataclass
class RelayedBot:
    portal: LivePortal
    client: Client
    bot_id: str
    # A personal API token of the owner, read-write: what a client's tools hold.
    token: str

    @property
    def base(self) -> str:
        return f"{self.portal.url}/bots/{self.bot_id}"

    def ft(self, credential: str | None = None) -> FtRestClient:
        return FtRestClient(self.base, "me", credential or self.token, timeout=30)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.base}/api/v1/{path}", timeout=30, **kwargs)


def _personal_token(http: TestClient, client: Client, scope: str) -> str:
    made = http.post(
        "/api/v1/auth/tokens", json={"name": f"ft-{scope}", "scope": scope}, headers=client.auth
    )
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def _wait_until_running(http: TestClient, client: Client, bot_id: str) -> None:
    deadline = time.monotonic() + 240
    while True:
        bot = http.get(f"/api/v1/bots/{bot_id}", headers=client.auth).json()
        if bot["actual_state"] == "running" and bot["freqtrade_state"] == "RUNNING":
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the bot never ran: {bot}")
        time.sleep(1)


@pytest.fixture(scope="module")
def bot(http: TestClient, sandbox: Sandbox, live_portal: LivePortal) -> Iterator[RelayedBot]:
    client = sign_up(http, "Relayed")
    sandbox.forget_tenant(client.tenant_id)
    uploaded = http.post(
        "/api/v1/strategies",
        json={"name": "EnterNow", "source": source("EnterNow")},
        headers=client.auth,
    )
    assert uploaded.status_code == 201, uploaded.text
    body = {"name": "relayed", "strategy_id": uploaded.json()["id"], "config": BOT_CONFIG}
    created = http.post("/api/v1/bots", json=body, headers=client.auth)
    assert created.status_code == 201, created.text
    bot_id = str(created.json()["id"])
    started = http.post(f"/api/v1/bots/{bot_id}/start", headers=client.auth)
    assert started.status_code == 202, started.text
    try:
        _wait_until_running(http, client, bot_id)
        yield RelayedBot(live_portal, client, bot_id, _personal_token(http, client, "write"))
    finally:
        http.delete(f"/api/v1/bots/{bot_id}", headers=client.auth)


def test_the_owner_uses_freqtrades_own_client(bot: RelayedBot) -> None:
    ft = bot.ft()
    deadline = time.monotonic() + 60
    while (pong := ft.ping()) != {"status": "pong"} and time.monotonic() < deadline:
        time.sleep(1)  # freqtrade's API server comes up a moment after the bot reports
    assert pong == {"status": "pong"}
    assert ft.version()["version"].startswith("2026.9")
    config = ft.show_config()
    assert config["dry_run"] is True and config["strategy"] == "EnterNow"
    assert config["state"] == "running"
    # The figures are the bot's own, from its trade database.
    assert isinstance(ft.status(), list)
    trades = ft.trades()
    assert set(trades) >= {"trades", "trades_count", "total_trades"}
    profit = ft.profit()
    assert "profit_all_coin" in profit and "trade_count" in profit
    balance = ft.balance()
    assert balance["stake"] == "USDT"
    assert ft.whitelist()["whitelist"] == ["BTC/USDT"]
    assert isinstance(ft.daily()["data"], list)


def test_an_access_token_and_a_read_only_token_work_too(http: TestClient, bot: RelayedBot) -> None:
    name = bot.ft().show_config()["bot_name"]
    assert bot.ft(bot.client.token).show_config()["bot_name"] == name
    read_only = bot.ft(_personal_token(http, bot.client, "read"))
    assert read_only.show_config()["dry_run"] is True
    refused = read_only.stop()
    assert refused["status"] == 403 and "only read" in refused["detail"]
    assert bot.ft().show_config()["state"] == "running"


def test_the_answer_is_the_portals_json_without_the_bots_headers(bot: RelayedBot) -> None:
    answer = bot.call("GET", "ping", auth=("me", bot.client.token))
    assert answer.status_code == 200 and answer.json() == {"status": "pong"}
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in answer.headers["content-security-policy"]
    bearer = bot.call("GET", "count", headers={"Authorization": f"Bearer {bot.client.token}"})
    assert bearer.status_code == 200 and "current" in bearer.json()


def test_the_owner_controls_the_dry_run(bot: RelayedBot) -> None:
    ft = bot.ft()
    stopped = ft.stop()
    assert "stopping" in stopped["status"]
    assert ft.show_config()["state"] == "stopped"
    started = ft.start()
    assert "starting" in started["status"]
    assert ft.show_config()["state"] == "running"


def test_freqtrades_token_log_in_gives_tokens_for_this_bot(bot: RelayedBot) -> None:
    login = bot.call("POST", "token/login", auth=("me", bot.client.token))
    assert login.status_code == 200, login.text
    tokens = login.json()
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    status = bot.call("GET", "status", headers={"Authorization": f"Bearer {access}"})
    assert status.status_code == 200 and isinstance(status.json(), list)
    # FtRestClient with the bot token as its password, too.
    assert bot.ft(access).ping() == {"status": "pong"}
    refreshed = bot.call("POST", "token/refresh", headers={"Authorization": f"Bearer {refresh}"})
    assert refreshed.status_code == 200, refreshed.text
    again = refreshed.json()["access_token"]
    assert bot.call("GET", "count", headers={"Authorization": f"Bearer {again}"}).status_code == 200
    # A refresh token is no access token, and an access token refreshes nothing.
    wrong = bot.call("GET", "count", headers={"Authorization": f"Bearer {refresh}"})
    assert wrong.status_code == 401
    not_refresh = bot.call("POST", "token/refresh", headers={"Authorization": f"Bearer {access}"})
    assert not_refresh.status_code == 401
    # The bot token is good for this bot's API only, never for the rest of the API.
    api = httpx.get(f"{bot.portal.url}/api/v1/bots", headers={"Authorization": f"Bearer {access}"})
    assert api.status_code == 401


def test_another_tenant_and_strangers_are_refused(http: TestClient, bot: RelayedBot) -> None:
    other = sign_up(http, "Nosy")
    foreign = bot.call("GET", "status", auth=("me", other.token))
    assert foreign.status_code == 404, foreign.text
    assert foreign.headers["content-type"] == "application/problem+json"
    assert bot.ft(other.token).show_config()["status"] == 404
    login = bot.call("POST", "token/login", auth=("me", other.token))
    assert login.status_code == 404
    anonymous = bot.call("GET", "status")
    assert anonymous.status_code == 401
    assert bot.call("GET", "ping").status_code == 401
    wrong_password = bot.call("GET", "status", auth=("me", "not-a-credential"))
    assert wrong_password.status_code == 401
    assert bot.call("GET", "status", auth=("fta", "")).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "strategy/EnterNow"),
        ("POST", "backtest"),
        ("GET", "backtest"),
        ("POST", "pairlists/evaluate"),
        ("POST", "download_data"),
        ("POST", "forceenter"),
        ("DELETE", "trades/1"),
        ("GET", "message/ws"),
    ],
)
def test_routes_outside_the_allow_list_are_forbidden(
    bot: RelayedBot, method: str, path: str
) -> None:
    answer = bot.call(method, path, auth=("me", bot.client.token), json={})
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def _websocket_url(bot: RelayedBot, token: str | None) -> str:
    base = bot.portal.url.replace("http", "ws", 1)
    query = f"?token={token}" if token else ""
    return f"{base}/bots/{bot.bot_id}/api/v1/message/ws{query}"


async def _first_message_of_type(url: str, request: dict[str, Any], kind: str) -> Any:
    async with connect(url, proxy=None, open_timeout=30) as socket:
        await socket.send(json.dumps(request))
        async with asyncio.timeout(60):
            while True:
                message = json.loads(await socket.recv())
                if message["type"] == kind:
                    return message


async def _close_code(url: str, request: dict[str, Any] | None = None) -> int:
    """The code the portal closes the socket with (after `request`, when given)."""
    async with connect(url, proxy=None, open_timeout=30) as socket:
        if request is not None:
            await socket.send(json.dumps(request))
        try:
            async with asyncio.timeout(30):
                while True:
                    await socket.recv()
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code
    raise AssertionError("the socket stayed open")


def test_the_bots_websocket_serves_its_owner_and_no_one_else(
    http: TestClient, bot: RelayedBot
) -> None:
    # FreqUI's way: the access token of the bot's token/login in the query.
    access = bot.call("POST", "token/login", auth=("me", bot.client.token)).json()["access_token"]
    whitelist = asyncio.run(
        _first_message_of_type(_websocket_url(bot, access), {"type": "whitelist"}, "whitelist")
    )
    assert whitelist == {"type": "whitelist", "data": ["BTC/USDT"]}
    # A personal API token works as well (a script's way).
    frames = asyncio.run(
        _first_message_of_type(
            _websocket_url(bot, bot.token),
            {"type": "analyzed_df", "data": {"limit": 5, "pair": "BTC/USDT"}},
            "analyzed_df",
        )
    )
    assert frames["data"]["key"][0] == "BTC/USDT"

    other = sign_up(http, "Eavesdropper")
    assert asyncio.run(_close_code(_websocket_url(bot, other.token))) == 4404
    assert asyncio.run(_close_code(_websocket_url(bot, None))) == 4401
    assert asyncio.run(_close_code(_websocket_url(bot, "not-a-credential"))) == 4401
    # Only freqtrade's subscribe, whitelist and analyzed_df requests reach the bot.
    refused = asyncio.run(_close_code(_websocket_url(bot, access), {"type": "status"}))
    assert refused == 1008


def test_a_stopped_bot_has_no_api_and_no_address(http: TestClient, bot: RelayedBot) -> None:
    stopped = http.post(f"/api/v1/bots/{bot.bot_id}/stop", headers=bot.client.auth)
    assert stopped.status_code == 202
    deadline = time.monotonic() + 90
    while (
        http.get(f"/api/v1/bots/{bot.bot_id}", headers=bot.client.auth).json()["actual_state"]
        != "stopped"
    ):
        assert time.monotonic() < deadline, "the bot did not stop"
        time.sleep(1)
    with session_scope() as session:
        row = session.get(Bot, uuid.UUID(bot.bot_id))
        assert row is not None and row.api_address is None
    answer = bot.call("GET", "status", auth=("me", bot.client.token))
    assert answer.status_code == 409 and "stopped" in answer.json()["detail"]
