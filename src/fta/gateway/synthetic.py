"""Deterministic synthetic OHLCV candles for replay mode.

A candle is a pure function of (symbol, interval, open time): the same request gives the same
answer in every process, on every host, at any time. Prices follow one continuous path per
symbol: the log-price is a sum of sinusoids whose periods run from minutes to about a year,
with amplitudes growing like the square root of the period (the spectrum of a random walk) and
phases seeded from the symbol. Every timeframe samples that one path, so a 1h candle agrees
with its twelve 5m candles (same open, close; high/low up to sampling), consecutive candles
join (close == next open), and the short periods make enough swings for RSI or crossover
strategies to trade.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache, lru_cache

from fta.markets import INTERVAL_MS, MINUTE_MS, Market

# Reference prices (in USDT) that give the synthetic markets a plausible level.
REFERENCE_PRICES: dict[str, float] = {
    "USDT": 1.0,
    "BTC": 42_000.0,
    "ETH": 2_300.0,
    "SOL": 100.0,
    "BNB": 300.0,
    "XRP": 0.6,
    "ADA": 0.5,
    "DOGE": 0.08,
}

DAILY_VOLATILITY = 0.03
_FIRST_PERIOD_MINUTES = 7.0
_PERIOD_RATIO = 1.7
_PERIOD_COUNT = 22  # up to about 400 days
_MAX_SAMPLES_PER_CANDLE = 16
# Relative amplitude of the second-by-second jitter of the live price.
LIVE_JITTER = 0.0005


@dataclass(frozen=True)
class Candle:
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal

    def as_binance(self) -> list[int | str]:
        """The row format of Binance's GET /api/v3/klines."""
        return [
            self.open_time,
            str(self.open),
            str(self.high),
            str(self.low),
            str(self.close),
            str(self.volume),
            self.close_time,
            str(self.quote_volume),
            self.trades,
            str(self.taker_buy_volume),
            str(self.taker_buy_quote_volume),
            "0",
        ]


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) derived from the parts."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass(frozen=True)
class _Path:
    log_base: float
    periods_minutes: tuple[float, ...]
    amplitudes: tuple[float, ...]
    phases: tuple[float, ...]

    def price(self, minute: float) -> float:
        total = self.log_base
        for period, amplitude, phase in zip(
            self.periods_minutes, self.amplitudes, self.phases, strict=True
        ):
            total += amplitude * math.sin(2.0 * math.pi * minute / period + phase)
        return math.exp(total)


def _reference_price(market: Market) -> float:
    def level(asset: str) -> float:
        known = REFERENCE_PRICES.get(asset)
        return known if known is not None else 10.0 ** (4.0 * unit("level", asset) - 1.0)

    return level(market.base) / level(market.quote)


_PERIODS = tuple(_FIRST_PERIOD_MINUTES * _PERIOD_RATIO**k for k in range(_PERIOD_COUNT))
# A sinusoid of amplitude a moves the log-price over h minutes by a variance (over random
# phases) of a² (1 - cos(2πh/P)); normalise so daily log-returns have DAILY_VOLATILITY.
_SHAPE = tuple(math.sqrt(period / (24 * 60)) for period in _PERIODS)
_DAILY_VARIANCE = sum(
    shape**2 * (1 - math.cos(2 * math.pi * 24 * 60 / period))
    for shape, period in zip(_SHAPE, _PERIODS, strict=True)
)
_AMPLITUDES = tuple(DAILY_VOLATILITY * shape / math.sqrt(_DAILY_VARIANCE) for shape in _SHAPE)


@cache
def _path(market: Market) -> _Path:
    scale = 0.8 + 0.5 * unit("scale", market.symbol)
    periods = _PERIODS
    amplitudes = tuple(scale * amplitude for amplitude in _AMPLITUDES)
    phases = tuple(2.0 * math.pi * unit("phase", market.symbol, k) for k in range(_PERIOD_COUNT))
    return _Path(math.log(_reference_price(market)), periods, amplitudes, phases)


def _round(value: float, step: Decimal) -> Decimal:
    """`value` rounded to a positive multiple of `step`, printed with the step's decimals."""
    return Decimal(max(1, round(value / float(step)))) * step


@lru_cache(maxsize=65_536)
def candle(market: Market, interval: str, open_time: int) -> Candle:
    """The synthetic candle of `market` at `open_time` (which must be aligned)."""
    return _candle(market, interval, open_time, open_time + INTERVAL_MS[interval])


def live_candle(market: Market, interval: str, open_time: int, as_of: int) -> Candle:
    """The candle opened at `open_time` as it stands at `as_of` (a whole second within it).

    It samples the same points as the closed candle up to `as_of`, then the live price: its
    close moves with the clock and, once the candle closes, equals the closed candle's close.
    """
    end = open_time + INTERVAL_MS[interval]
    if as_of >= end:
        return candle(market, interval, open_time)
    partial = _candle(market, interval, open_time, as_of)
    close = live_price(market, as_of)
    return replace(
        partial,
        close=close,
        high=max(partial.high, close),
        low=min(partial.low, close),
        close_time=end - 1,
    )


def _candle(market: Market, interval: str, open_time: int, until: int) -> Candle:
    """The candle of `interval` at `open_time`, from the samples taken before `until`."""
    length = INTERVAL_MS[interval]
    path = _path(market)
    samples = max(1, min(length // MINUTE_MS, _MAX_SAMPLES_PER_CANDLE))
    step = length // samples  # whole milliseconds for every interval served
    times = [*range(open_time, until, step), until]
    prices = [path.price(time / MINUTE_MS) for time in times]
    elapsed = (until - open_time) / MINUTE_MS
    open_price, close_price = prices[0], prices[-1]
    wick_up = 1.0 + 0.0006 * math.sqrt(elapsed) * unit("up", market.symbol, interval, open_time)
    wick_down = 1.0 - 0.0006 * math.sqrt(elapsed) * unit("dn", market.symbol, interval, open_time)
    high = _round(max(prices) * wick_up, market.tick_size)
    low = _round(min(prices) * max(wick_down, 0.5), market.tick_size)
    open_dec = _round(open_price, market.tick_size)
    close_dec = _round(close_price, market.tick_size)
    # Rounding may push open/close past the rounded extremes: keep the OHLC invariants.
    high = max(high, open_dec, close_dec)
    low = min(low, open_dec, close_dec)

    # Volume: larger on bigger moves, about 50k USDT per minute on a quiet market.
    move = abs(math.log(close_price / open_price))
    quote_activity = 50_000.0 * elapsed * (0.5 + unit("vol", market.symbol, interval, open_time))
    quote_activity *= 1.0 + 50.0 * move
    mid = (open_price + close_price) / 2.0
    volume = _round(quote_activity / (mid * _reference_price_in_usdt(market)), market.step_size)
    quote_volume = (volume * (open_dec + close_dec) / 2).quantize(Decimal("0.00000001"))
    taker_share = Decimal(repr(round(0.3 + 0.4 * unit("taker", market.symbol, open_time), 4)))
    taker_volume = _round(float(volume * taker_share), market.step_size)
    return Candle(
        open_time=open_time,
        close_time=open_time + length - 1,
        open=open_dec,
        high=high,
        low=low,
        close=close_dec,
        volume=volume,
        quote_volume=quote_volume,
        trades=max(1, int(quote_activity / 500.0)),
        taker_buy_volume=taker_volume,
        taker_buy_quote_volume=(taker_volume * (open_dec + close_dec) / 2).quantize(
            Decimal("0.00000001")
        ),
    )


def _reference_price_in_usdt(market: Market) -> float:
    """USDT value of one unit of the quote asset, to size volumes in quote terms."""
    return REFERENCE_PRICES.get(market.quote, 1.0)


def price_at(market: Market, time_ms: int) -> Decimal:
    """The path's price at a given time, rounded to the market's tick."""
    return _round(_path(market).price(time_ms / MINUTE_MS), market.tick_size)


def live_price(market: Market, time_ms: int) -> Decimal:
    """The price traded at `time_ms`: the path plus a jitter that vanishes on whole minutes.

    The path alone is smooth over seconds, so a resting limit order at the best bid would
    wait for minutes in a rising market; the jitter makes the book cross it as a real one
    would, while every closed candle (sampled on whole minutes) keeps its value.
    """
    second = time_ms // 1000
    envelope = math.sin(math.pi * (second % 60) / 60)
    jitter = LIVE_JITTER * envelope * (2.0 * unit("jitter", market.symbol, second) - 1.0)
    return _round(_path(market).price(time_ms / MINUTE_MS) * (1.0 + jitter), market.tick_size)
