"""Which pairs a job or a bot may use now: the market list of the market-data mode.

Replay serves the markets of the gateway's fixture, the only ones its synthetic candles exist
for. Proxy forwards to the exchange, so its pairs are the exchange's spot markets that are
trading. The portal has no Internet and must never call the exchange per request: the worker
asks the gateway, which owns the upstream and its request-weight budget, for exchangeInfo every
`REFRESH_SECONDS` and keeps the list in `market_pairs`; submissions are checked against it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import httpx
from sqlalchemy import DateTime, String, delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from fta.db import Base, session_scope, utcnow
from fta.errors import Invalid, Unavailable
from fta.market_data.recorded import recorded_pairs
from fta.markets import SUPPORTED_EXCHANGES, TRADING, ListedPair, pairs, spot_pairs
from fta.settings import get_settings

log = logging.getLogger(__name__)

# The gateway keeps exchangeInfo fresh for 5 minutes; markets are listed or halted rarely.
REFRESH_SECONDS = 600.0
# After a failed refresh (gateway or exchange unreachable), the next attempt.
RETRY_SECONDS = 30.0
# Binance's full exchangeInfo is several megabytes.
FETCH_TIMEOUT_SECONDS = 30.0
# How soon a client refused for want of a market list should try again.
UNAVAILABLE_RETRY_SECONDS = 60
EXAMPLE_COUNT = 8


class MarketPair(Base):
    """A spot market the exchange listed at the last refresh, trading or not."""

    __tablename__ = "market_pairs"

    exchange: Mapped[str] = mapped_column(String(32), primary_key=True)
    pair: Mapped[str] = mapped_column(String(48), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def fetch_listed_pairs(gateway_url: str, exchange: str) -> list[ListedPair]:
    """The spot markets the exchange lists, asked of the gateway (raises httpx.HTTPError or
    ValueError when it cannot tell)."""
    response = httpx.get(
        f"{gateway_url.rstrip('/')}/{exchange}/api/v3/exchangeInfo",
        timeout=FETCH_TIMEOUT_SECONDS,
    )
    response.raise_for_status()
    return spot_pairs(response.json())


def store_listed_pairs(
    session: Session, exchange: str, listed: Sequence[ListedPair], now: datetime
) -> None:
    """Replaces the exchange's market list with `listed`. An empty list is refused: no exchange
    lists no market, so the last list known is kept."""
    if not listed:
        raise ValueError(f"{exchange} listed no spot market: the last list is kept")
    # Two refreshes at once would delete each other's rows.
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"market-pairs:{exchange}"}
    )
    rows = [
        {"exchange": exchange, "pair": item.pair, "status": item.status, "refreshed_at": now}
        for item in listed
    ]
    statement = insert(MarketPair)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[MarketPair.exchange, MarketPair.pair],
            set_={"status": statement.excluded.status, "refreshed_at": now},
        ),
        rows,
    )
    session.execute(
        delete(MarketPair).where(
            MarketPair.exchange == exchange, MarketPair.pair.not_in([row["pair"] for row in rows])
        )
    )


def refresh_market_pairs(session: Session, gateway_url: str, exchange: str, now: datetime) -> int:
    """Fetches the exchange's market list through the gateway, then stores it (no transaction
    is open while the gateway answers); returns how many markets it lists."""
    listed = fetch_listed_pairs(gateway_url, exchange)
    store_listed_pairs(session, exchange, listed, now)
    return len(listed)


def refresh_market_lists(gateway_url: str) -> float:
    """Refreshes every exchange's market list through the gateway at `gateway_url` (the
    worker's round, in proxy mode); returns the seconds until the next refresh: sooner after a
    failure, which keeps the last list."""
    for exchange in SUPPORTED_EXCHANGES:
        try:
            with session_scope() as session:
                count = refresh_market_pairs(session, gateway_url, exchange, utcnow())
        except (httpx.HTTPError, ValueError) as error:
            log.warning("%s market list not refreshed, the last one kept: %s", exchange, error)
            return RETRY_SECONDS
        log.info("%s market list refreshed: %d spot markets", exchange, count)
    return REFRESH_SECONDS


def usable_pairs(session: Session, exchange: str) -> frozenset[str]:
    """The pairs a job or a bot may use now, by the market-data mode; empty while the mode's
    list is not known yet. In recorded mode: the pairs the operator imported."""
    if get_settings().market_data_mode == "recorded":
        return recorded_pairs(session, exchange)
    if get_settings().market_data_mode == "proxy":
        return frozenset(
            session.scalars(
                select(MarketPair.pair).where(
                    MarketPair.exchange == exchange, MarketPair.status == TRADING
                )
            )
        )
    return pairs(exchange)


def _not_trading(session: Session, exchange: str, candidates: list[str]) -> dict[str, str]:
    """Pairs among `candidates` that the exchange lists with another status than trading."""
    if get_settings().market_data_mode != "proxy":
        return {}
    rows = session.execute(
        select(MarketPair.pair, MarketPair.status).where(
            MarketPair.exchange == exchange,
            MarketPair.pair.in_(candidates),
            MarketPair.status != TRADING,
        )
    )
    return {pair: status for pair, status in rows}


def require_usable_pairs(
    session: Session, exchange: str, requested: Sequence[str], subject: str
) -> None:
    """Raises Invalid naming the pairs that cannot be used now, with what can, about the
    config of `subject` ("job", "bot"); Unavailable while the market list is not known (never
    accepting pairs unchecked)."""
    usable = usable_pairs(session, exchange)
    if not usable and get_settings().market_data_mode == "recorded":
        raise Invalid(f"no market data of {exchange} has been recorded on this platform yet")
    if not usable:
        raise Unavailable(
            f"the exchange's market list ({exchange}) is not available yet; try again in a minute",
            retry_after=UNAVAILABLE_RETRY_SECONDS,
        )
    refused = [pair for pair in requested if pair not in usable]
    if not refused:
        return
    halted = _not_trading(session, exchange, refused)
    unknown = [pair for pair in refused if pair not in halted]
    problems = []
    if unknown:
        problems.append(f"unknown pair(s) on {exchange}: {', '.join(unknown[:5])}")
    if halted:
        problems.append(
            f"not trading on {exchange} now: "
            + ", ".join(f"{pair} ({status})" for pair, status in list(halted.items())[:5])
        )
    quote = requested[0].split("/")[1]
    same_quote = sorted(pair for pair in usable if pair.split("/")[1] == quote)
    offered, what = (same_quote, f"{quote} pairs") if same_quote else (sorted(usable), "pairs")
    problems.append(f"{len(offered)} {what} available, e.g. {', '.join(offered[:EXAMPLE_COUNT])}")
    raise Invalid(f"invalid {subject} config: pairs: " + "; ".join(problems))
