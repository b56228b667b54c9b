"""The euro rates of bots' stake currencies, read at the exchange by the worker and kept in
`eur_rates` for the pages.

The portal has no Internet and never calls the exchange per request. When the platform
forwards to the exchange (proxy mode), the worker asks the market-data gateway (which owns the
upstream and its request-weight budget) for the last prices of the markets that price each
stake currency in EUR (`fta.bots.eur.route`: `EUR/USDT` for USDT, `BTC/EUR` for BTC...) every
`REFRESH_SECONDS`, and stores one rate per currency with the markets and the time it was read.
A failed refresh keeps the last rates; the pages show the time of the rate they use.
Synthetic and recorded market data have no live price: no rate is read from them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

import httpx
from sqlalchemy import CheckConstraint, Numeric, String, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from fta.bots.eur import BRIDGE, EUR, Route, route
from fta.bots.models import Bot
from fta.db import Base, session_scope, utcnow
from fta.jobs.market_pairs import usable_pairs

log = logging.getLogger(__name__)

REFRESH_SECONDS = 600.0
RETRY_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 10.0
# The gateway's (and Binance's) bound on the symbols of one ticker request.
MAX_SYMBOLS_PER_REQUEST = 100
EXCHANGE = "binance"


class EurRate(Base):
    """What one unit of a stake currency was worth in euros at the exchange when the worker
    last read it."""

    __tablename__ = "eur_rates"
    __table_args__ = (CheckConstraint("eur_per_unit > 0", name="eur_per_unit"),)

    currency: Mapped[str] = mapped_column(String(20), primary_key=True)
    eur_per_unit: Mapped[Decimal] = mapped_column(Numeric(38, 18))
    # The exchange and the markets quoted, e.g. "binance EUR/USDT".
    source: Mapped[str] = mapped_column(String(120))
    quoted_at: Mapped[datetime]


def rates(session: Session) -> dict[str, EurRate]:
    """Every stored rate, by currency."""
    return {rate.currency: rate for rate in session.scalars(select(EurRate))}


def stake_currencies(session: Session) -> set[str]:
    """The stake currencies of the live bots, and USDT (the most common) in any case."""
    quote = func.split_part(Bot.config["pairs"][0].astext, "/", 2)
    found = session.scalars(select(quote).where(Bot.deleted_at.is_(None)).distinct())
    return {currency for currency in found if currency} | {BRIDGE}


def parse_prices(body: object, wanted: Mapping[str, str]) -> dict[str, Decimal]:
    """The last prices of a `ticker/24hr` answer, by pair, for the symbols of `wanted`
    (symbol → pair); anything else in the answer is ignored. ValueError for an answer that
    is not a list of tickers."""
    if not isinstance(body, list):
        raise ValueError("ticker answer is not a list")
    prices: dict[str, Decimal] = {}
    for ticker in body:
        if not isinstance(ticker, dict):
            raise ValueError("ticker answer holds something else than tickers")
        pair = wanted.get(str(ticker.get("symbol")))
        raw = ticker.get("lastPrice")
        if pair is None or not isinstance(raw, str):
            continue
        try:
            price = Decimal(raw)
        except InvalidOperation:
            continue
        if price.is_finite() and price > 0:
            prices[pair] = price
    return prices


def fetch_prices(
    client: httpx.Client, gateway_url: str, exchange: str, pairs: Sequence[str]
) -> dict[str, Decimal]:
    """The last price of each of `pairs`, asked of the gateway (raises httpx.HTTPError or
    ValueError when it cannot tell)."""
    wanted = {pair.replace("/", ""): pair for pair in pairs}
    symbols = sorted(wanted)
    prices: dict[str, Decimal] = {}
    for start in range(0, len(symbols), MAX_SYMBOLS_PER_REQUEST):
        batch = symbols[start : start + MAX_SYMBOLS_PER_REQUEST]
        response = client.get(
            f"{gateway_url.rstrip('/')}/{exchange}/api/v3/ticker/24hr",
            params={"symbols": json.dumps(batch, separators=(",", ":")), "type": "MINI"},
            timeout=FETCH_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        prices.update(parse_prices(response.json(), wanted))
    return prices


def store_rates(
    session: Session,
    exchange: str,
    routes: Iterable[Route],
    prices: Mapping[str, Decimal],
    now: datetime,
) -> int:
    """Stores the rate of each route whose prices are known; returns how many."""
    stored = 0
    for found in routes:
        if not found.steps:
            continue  # EUR itself
        try:
            eur_per_unit = found.rate(prices)
        except (KeyError, ValueError) as missing:
            log.warning("no EUR rate for %s: %s", found.currency, missing)
            continue
        values = {
            "currency": found.currency,
            "eur_per_unit": eur_per_unit,
            "source": f"{exchange} {found.describe()}",
            "quoted_at": now,
        }
        statement = insert(EurRate).values(**values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[EurRate.currency],
                set_={key: statement.excluded[key] for key in values if key != "currency"},
            )
        )
        stored += 1
    return stored


def refresh_eur_rates(gateway_url: str, client: httpx.Client | None = None) -> float:
    """Reads the rates of the live bots' stake currencies through the gateway at
    `gateway_url` and stores them (the worker's round, in proxy mode); returns the seconds
    until the next refresh: sooner after a failure, which keeps the last rates. No
    transaction is open while the gateway answers."""
    with session_scope() as session:
        currencies = stake_currencies(session)
        listed = usable_pairs(session, EXCHANGE)
    if not listed:
        return RETRY_SECONDS  # the exchange's market list is not known yet
    routes = [found for found in (route(c, listed) for c in sorted(currencies)) if found]
    unpriced = sorted(currencies - {found.currency for found in routes} - {EUR})
    if unpriced:
        log.info("no EUR market for %s on %s", ", ".join(unpriced), EXCHANGE)
    pairs = sorted({pair for found in routes for pair in found.pairs})
    if not pairs:
        return REFRESH_SECONDS
    own_client = client is None
    http = client or httpx.Client()
    try:
        prices = fetch_prices(http, gateway_url, EXCHANGE, pairs)
    except (httpx.HTTPError, ValueError) as error:
        log.warning("EUR rates not refreshed, the last ones kept: %s", error)
        return RETRY_SECONDS
    finally:
        if own_client:
            http.close()
    with session_scope() as session:
        stored = store_rates(session, EXCHANGE, routes, prices, utcnow())
    log.info("EUR rates refreshed: %d currencies", stored)
    return REFRESH_SECONDS
