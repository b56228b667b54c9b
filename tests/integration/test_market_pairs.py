"""Pairs in proxy mode: the exchange's market list, fetched through the gateway (a real process
forwarding to the exchange stand-in), kept in Postgres, and checked at every submission."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from fta.db import session_scope, utcnow
from fta.jobs.market_pairs import (
    REFRESH_SECONDS,
    RETRY_SECONDS,
    MarketPair,
    refresh_market_lists,
    store_listed_pairs,
)
from fta.markets import ListedPair
from fta.settings import get_settings
from tests.support.api import Client, leave_nothing_waiting, sign_up, upload_strategy
from tests.support.exchange_standin import LISTED_MARKETS, ExchangeStandin
from tests.support.host_processes import free_port, gateway_process

API = "/api/v1"
JOB = {"exchange": "binance", "timeframe": "5m", "timerange": "20240101-20240201"}
BOT = {"exchange": "binance", "timeframe": "5m", "stake_amount": 100, "dry_run_wallet": 1000}
# The stand-in's trading USDT markets: the fixture's seven and ten of its extra ones.
TRADING_USDT = 17


@pytest.fixture
def proxy_mode(app_settings: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The platform in proxy mode, with no market list yet; none is left behind."""

    def forget() -> None:
        with session_scope() as session:
            session.execute(delete(MarketPair).where(MarketPair.exchange == "binance"))

    forget()
    monkeypatch.setattr(get_settings(), "market_data_mode", "proxy")
    yield
    forget()


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = sign_up(http)
    yield client
    # Nothing left queued or wanting to run on pairs the replay gateway does not serve.
    leave_nothing_waiting(client)


def _job(http: TestClient, client: Client, strategy_id: str, *pairs: str) -> Any:
    body = {"kind": "backtest", "strategy_id": strategy_id, "config": {**JOB, "pairs": pairs}}
    return http.post(f"{API}/jobs", json=body, headers=client.auth)


def _bot(http: TestClient, client: Client, strategy_id: str, name: str, *pairs: str) -> Any:
    body = {"name": name, "strategy_id": strategy_id, "config": {**BOT, "pairs": pairs}}
    return http.post(f"{API}/bots", json=body, headers=client.auth)


def _stored() -> dict[str, str]:
    with session_scope() as session:
        rows = session.execute(
            select(MarketPair.pair, MarketPair.status).where(MarketPair.exchange == "binance")
        )
        return {pair: status for pair, status in rows}


def test_proxy_mode_takes_its_pairs_from_the_exchanges_markets(
    proxy_mode: None, http: TestClient, client: Client, tmp_path: Path
) -> None:
    strategy_id = upload_strategy(client)

    # Never refreshed: no pair is accepted unchecked, the client is told to come back.
    for refused in (
        _job(http, client, strategy_id, "BTC/USDT"),
        _bot(http, client, strategy_id, "early", "BTC/USDT"),
    ):
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "60"
        assert (
            "market list (binance) is not available yet; try again in a minute"
            in (refused.json()["detail"])
        )

    with (
        ExchangeStandin(latency_seconds=0) as exchange,
        gateway_process("proxy", tmp_path / "gateway.log", upstream=exchange.url) as gateway,
    ):
        assert refresh_market_lists(gateway) == REFRESH_SECONDS
        # Through the gateway, which forwarded to its upstream: once.
        assert exchange.count("/api/v3/exchangeInfo") == 1
    stored = _stored()
    assert len(stored) == LISTED_MARKETS == 20
    assert stored["PEPE/USDT"] == "TRADING" and stored["LUNA/USDT"] == "BREAK"

    # Listed by the exchange, not by the replay fixture: accepted.
    accepted = _job(http, client, strategy_id, "PEPE/USDT", "BTC/USDT")
    assert accepted.status_code == 202, accepted.text
    assert _bot(http, client, strategy_id, "pepe", "PEPE/USDT").status_code == 201
    assert _bot(http, client, strategy_id, "link", "LINK/BTC").status_code == 201

    halted = _job(http, client, strategy_id, "LUNA/USDT")
    assert halted.status_code == 422
    assert halted.json()["detail"].startswith(
        "invalid job config: pairs: not trading on binance now: LUNA/USDT (BREAK); "
        f"{TRADING_USDT} USDT pairs available, e.g. ADA/USDT, ATOM/USDT, AVAX/USDT"
    )
    unlisted = _job(http, client, strategy_id, "BTC/USDT", "NOPE/USDT", "LUNA/USDT")
    assert unlisted.status_code == 422
    assert unlisted.json()["detail"].startswith(
        "invalid job config: pairs: unknown pair(s) on binance: NOPE/USDT; "
        "not trading on binance now: LUNA/USDT (BREAK); "
        f"{TRADING_USDT} USDT pairs available"
    )
    bot = _bot(http, client, strategy_id, "luna", "LUNA/USDT")
    assert bot.status_code == 422 and "LUNA/USDT (BREAK)" in bot.json()["detail"]

    # The gateway gone: the refresh is retried soon, and the last list still holds.
    assert refresh_market_lists(f"http://127.0.0.1:{free_port()}") == RETRY_SECONDS
    assert _stored() == stored
    assert _job(http, client, strategy_id, "PEPE/USDT").status_code == 202


def test_a_refresh_replaces_the_list_and_an_empty_one_is_refused(proxy_mode: None) -> None:
    first = utcnow()
    with session_scope() as session:
        store_listed_pairs(
            session,
            "binance",
            [ListedPair("BTC/USDT", "TRADING"), ListedPair("PEPE/USDT", "TRADING")],
            first,
        )
    with session_scope() as session:
        store_listed_pairs(
            session,
            "binance",
            [ListedPair("BTC/USDT", "HALT"), ListedPair("LINK/USDT", "TRADING")],
            utcnow(),
        )
    assert _stored() == {"BTC/USDT": "HALT", "LINK/USDT": "TRADING"}
    with session_scope() as session, pytest.raises(ValueError, match="listed no spot market"):
        store_listed_pairs(session, "binance", [], utcnow())
    assert _stored() == {"BTC/USDT": "HALT", "LINK/USDT": "TRADING"}


def test_replay_mode_offers_the_fixtures_pairs_whatever_the_exchange_lists(
    http: TestClient, client: Client
) -> None:
    assert get_settings().market_data_mode == "replay"
    with session_scope() as session:
        store_listed_pairs(session, "binance", [ListedPair("PEPE/USDT", "TRADING")], utcnow())
    try:
        refused = _job(http, client, upload_strategy(client), "PEPE/USDT")
    finally:
        with session_scope() as session:
            session.execute(delete(MarketPair).where(MarketPair.exchange == "binance"))
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "invalid job config: pairs: unknown pair(s) on binance: PEPE/USDT; 7 USDT pairs "
        "available, e.g. ADA/USDT, BNB/USDT, BTC/USDT, DOGE/USDT, ETH/USDT, SOL/USDT, XRP/USDT"
    )
