"""Euro rates in proxy mode: the worker's refresh reads the live bots' stake currencies and
the exchange's market list in Postgres, asks the gateway's ticker (here a stand-in answering
in Binance's format on loopback) and stores one rate per currency; a failure keeps them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from fta.bots import eur_rates
from fta.bots.eur_rates import REFRESH_SECONDS, RETRY_SECONDS, EurRate, refresh_eur_rates
from fta.db import session_scope, utcnow
from fta.jobs.market_pairs import MarketPair, store_listed_pairs
from fta.markets import ListedPair
from fta.settings import get_settings
from tests.support.api import Client, leave_nothing_waiting, sign_up, upload_strategy

LISTED = ["BTC/USDT", "ETH/BTC", "EUR/USDT", "BTC/EUR", "SOL/USDT"]
PRICES = {"EURUSDT": "1.25000000", "BTCEUR": "80000.00000000"}
BOT = {"exchange": "binance", "timeframe": "5m", "stake_amount": 1, "dry_run_wallet": 10}


class Ticker:
    """Binance's ticker/24hr on loopback, for the symbols of `PRICES`; counts its requests."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.failing = False
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                symbols = json.loads(parse_qs(url.query)["symbols"][0])
                owner.asked.append(symbols)
                if owner.failing or url.path != "/binance/api/v3/ticker/24hr":
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps(
                    [{"symbol": s, "lastPrice": PRICES[s]} for s in symbols if s in PRICES]
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _forget() -> None:
    with session_scope() as session:
        session.execute(delete(MarketPair).where(MarketPair.exchange == "binance"))
        session.execute(delete(EurRate))


@pytest.fixture
def proxy_mode(app_settings: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The platform in proxy mode with the exchange's market list known; nothing is left."""
    _forget()
    monkeypatch.setattr(get_settings(), "market_data_mode", "proxy")
    with session_scope() as session:
        store_listed_pairs(
            session, "binance", [ListedPair(pair, "TRADING") for pair in LISTED], utcnow()
        )
    yield
    _forget()


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = sign_up(http)
    yield client
    leave_nothing_waiting(client)


@pytest.fixture
def ticker() -> Iterator[Ticker]:
    stand_in = Ticker()
    yield stand_in
    stand_in.close()


def test_the_live_bots_stake_currencies_get_their_rates_and_a_failure_keeps_them(
    proxy_mode: None, http: TestClient, client: Client, ticker: Ticker
) -> None:
    strategy_id = upload_strategy(client)
    for name, pairs in (("usdt", ["BTC/USDT"]), ("btc", ["ETH/BTC"])):
        body = {"name": name, "strategy_id": strategy_id, "config": {**BOT, "pairs": pairs}}
        created = http.post("/api/v1/bots", json=body, headers=client.auth)
        assert created.status_code == 201, created.text
    with session_scope() as session:
        assert {"USDT", "BTC"} <= eur_rates.stake_currencies(session)

    assert refresh_eur_rates(ticker.url) == REFRESH_SECONDS
    # One request for the markets of every currency: BTC's own EUR market, USDT's through EUR.
    assert ticker.asked == [["BTCEUR", "EURUSDT"]]
    with session_scope() as session:
        stored = {
            currency: (rate.eur_per_unit, rate.source)
            for currency, rate in eur_rates.rates(session).items()
        }
    assert stored == {
        "USDT": (Decimal("0.8"), "binance EUR/USDT"),
        "BTC": (Decimal("80000"), "binance BTC/EUR"),
    }

    ticker.failing = True
    assert refresh_eur_rates(ticker.url) == RETRY_SECONDS
    with session_scope() as session:
        assert eur_rates.rates(session)["USDT"].eur_per_unit == Decimal("0.8")
