"""Bots' profits in euros: the markets that price a stake currency in EUR, the rate they give,
the conversion, and reading the prices from the gateway's ticker answer."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from fta.bots.eur import Route, Step, route, stake_currency, to_eur
from fta.bots.eur_rates import fetch_prices, parse_prices

LISTED = frozenset({"BTC/EUR", "EUR/USDT", "SOL/USDT", "BTC/USDT", "ETH/BTC", "EUR/USDC"})


def test_a_currency_is_priced_by_its_own_eur_market_first() -> None:
    assert route("BTC", LISTED) == Route("BTC", (Step("BTC/EUR", inverted=False),))
    # Binance quotes the euro in USDT: one USDT is worth one over that price.
    assert route("USDT", LISTED) == Route("USDT", (Step("EUR/USDT", inverted=True),))
    assert route("USDC", LISTED) == Route("USDC", (Step("EUR/USDC", inverted=True),))


def test_without_an_eur_market_the_rate_goes_across_usdt() -> None:
    found = route("SOL", LISTED)
    assert found == Route(
        "SOL", (Step("SOL/USDT", inverted=False), Step("EUR/USDT", inverted=True))
    )
    assert found.describe() == "SOL/USDT, EUR/USDT"
    assert found.rate({"SOL/USDT": Decimal("150"), "EUR/USDT": Decimal("1.25")}) == Decimal(120)


def test_no_route_when_the_exchange_lists_none_and_eur_needs_none() -> None:
    assert route("DOGE", LISTED) is None
    assert route("SOL", LISTED - {"EUR/USDT"}) is None
    assert route("EUR", LISTED) == Route("EUR", ())
    assert to_eur(Decimal("12.5"), "EUR", None) == Decimal("12.5")


def test_rates_and_conversions_are_exact_decimals() -> None:
    usdt = route("USDT", LISTED)
    assert usdt is not None
    rate = usdt.rate({"EUR/USDT": Decimal("1.08")})
    # One over 1.08, kept to 18 places.
    assert rate == Decimal("0.925925925925925926")
    assert to_eur(Decimal("108"), "USDT", rate) == Decimal("100.000000000000000008")
    assert to_eur(Decimal("-5"), "BTC", Decimal("90000")) == Decimal("-450000")
    assert to_eur(Decimal("5"), "USDT", None) is None


@pytest.mark.parametrize("price", [Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity")])
def test_a_price_that_is_not_positive_gives_no_rate(price: Decimal) -> None:
    usdt = route("USDT", LISTED)
    assert usdt is not None
    with pytest.raises(ValueError, match="not a positive number"):
        usdt.rate({"EUR/USDT": price})
    with pytest.raises(KeyError):
        usdt.rate({})


def test_the_stake_currency_is_the_quote_of_the_pairs() -> None:
    assert stake_currency({"pairs": ["ETH/BTC", "SOL/BTC"]}) == "BTC"
    assert stake_currency({"pairs": []}) is None
    assert stake_currency({}) is None
    assert stake_currency({"pairs": ["NOQUOTE"]}) is None


def test_prices_are_read_from_the_ticker_answer_and_nothing_else() -> None:
    wanted = {"EURUSDT": "EUR/USDT", "BTCEUR": "BTC/EUR"}
    body = [
        {"symbol": "EURUSDT", "lastPrice": "1.08120000"},
        {"symbol": "BTCEUR", "lastPrice": "0.00000000"},  # no trade: no price
        {"symbol": "ETHUSDT", "lastPrice": "2300.1"},  # not asked for
        {"symbol": "EURUSDT2", "lastPrice": "x"},
    ]
    assert parse_prices(body, wanted) == {"EUR/USDT": Decimal("1.0812")}
    with pytest.raises(ValueError):
        parse_prices({"code": -1121, "msg": "Invalid symbol."}, wanted)
    with pytest.raises(ValueError):
        parse_prices(["EURUSDT"], wanted)


def test_prices_are_asked_of_the_gateway_in_binances_format() -> None:
    asked: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        symbols = json.loads(request.url.params["symbols"])
        return httpx.Response(200, json=[{"symbol": s, "lastPrice": "2"} for s in symbols])

    with httpx.Client(transport=httpx.MockTransport(gateway)) as client:
        prices = fetch_prices(client, "http://market-data:8090/", "binance", ["EUR/USDT"])
    assert prices == {"EUR/USDT": Decimal(2)}
    (request,) = asked
    assert request.url.path == "/binance/api/v3/ticker/24hr"
    assert request.url.params["symbols"] == '["EURUSDT"]'
    assert request.url.params["type"] == "MINI"


def test_a_gateway_error_is_raised_for_the_caller_to_keep_the_last_rates() -> None:
    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"code": -1003, "msg": "busy"})

    with (
        httpx.Client(transport=httpx.MockTransport(busy)) as client,
        pytest.raises(httpx.HTTPStatusError),
    ):
        fetch_prices(client, "http://market-data:8090", "binance", ["EUR/USDT"])
