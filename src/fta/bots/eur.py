"""Bots' profits in euros: an amount of a stake currency at a rate quoted on the exchange.

A rate is the price of one unit of a currency in EUR, read from the exchange's own spot
markets (`route`): straight (`BTC/EUR`: its price), inverted (`EUR/USDT`: one over its price;
USDT is not the US dollar, so its own market is used), or across USDT (`SOL/USDT`, then
`EUR/USDT`). Everything stays Decimal; only the display rounds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal

EUR = "EUR"
# The currency most markets are quoted in: the bridge when a currency has no EUR market.
BRIDGE = "USDT"
# A stored rate keeps this many decimal places (the column's scale).
RATE_PLACES = 18
_RATE_QUANTUM = Decimal(1).scaleb(-RATE_PLACES)


@dataclass(frozen=True)
class Step:
    pair: str  # BASE/QUOTE, as freqtrade names it
    inverted: bool  # EUR is the pair's base: the rate is one over its price


@dataclass(frozen=True)
class Route:
    """How one unit of `currency` is priced in EUR from the exchange's markets."""

    currency: str
    steps: tuple[Step, ...]

    @property
    def pairs(self) -> tuple[str, ...]:
        return tuple(step.pair for step in self.steps)

    def describe(self) -> str:
        """The markets quoted, e.g. `EUR/USDT` or `SOL/USDT, EUR/USDT`."""
        return ", ".join(self.pairs)

    def rate(self, prices: Mapping[str, Decimal]) -> Decimal:
        """EUR for one unit of the currency, from the pairs' last prices (KeyError when a
        price is missing, ValueError when one is not positive)."""
        rate = Decimal(1)
        for step in self.steps:
            price = prices[step.pair]
            if not price.is_finite() or price <= 0:
                raise ValueError(f"{step.pair}: price {price} is not a positive number")
            rate = rate / price if step.inverted else rate * price
        return rate.quantize(_RATE_QUANTUM)


def route(currency: str, listed: Collection[str]) -> Route | None:
    """The shortest way to price `currency` in EUR with the `listed` pairs, or None when the
    exchange lists none: the currency's own EUR market first, then across USDT."""
    if currency == EUR:
        return Route(currency, ())
    if f"{currency}/{EUR}" in listed:
        return Route(currency, (Step(f"{currency}/{EUR}", inverted=False),))
    if f"{EUR}/{currency}" in listed:
        return Route(currency, (Step(f"{EUR}/{currency}", inverted=True),))
    bridge = f"{EUR}/{BRIDGE}"
    if currency != BRIDGE and f"{currency}/{BRIDGE}" in listed and bridge in listed:
        return Route(
            currency,
            (Step(f"{currency}/{BRIDGE}", inverted=False), Step(bridge, inverted=True)),
        )
    return None


def to_eur(amount: Decimal, currency: str, eur_per_unit: Decimal | None) -> Decimal | None:
    """`amount` of `currency` in EUR, unrounded; None without a rate (EUR needs none)."""
    if currency == EUR:
        return amount
    if eur_per_unit is None:
        return None
    return amount * eur_per_unit


def stake_currency(config: Mapping[str, object]) -> str | None:
    """A bot's stake currency: the quote of its pairs (all share it)."""
    pairs = config.get("pairs")
    if not isinstance(pairs, list) or not pairs or not isinstance(pairs[0], str):
        return None
    _, _, quote = pairs[0].partition("/")
    return quote or None
