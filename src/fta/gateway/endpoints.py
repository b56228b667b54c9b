"""The whitelist of Binance spot public endpoints and strict validation of their parameters.

Both modes validate first, then pass on only the parsed parameters: an upstream never sees a
parameter, or a value, that the gateway did not check. Errors mimic Binance's JSON errors so
that ccxt maps them to the same exceptions it would raise against the real exchange.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BINANCE_INTERVALS = frozenset(
    {"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h"}
    | {"1d", "3d", "1w", "1M"}
)
KLINES_DEFAULT_LIMIT = 500
KLINES_MAX_LIMIT = 1000
DEPTH_DEFAULT_LIMIT = 100
DEPTH_MAX_LIMIT = 5000
MAX_SYMBOLS_PER_REQUEST = 100

_SYMBOL_RE = re.compile(r"[A-Z0-9_.-]{1,20}")
_UINT_RE = re.compile(r"[0-9]{1,20}")

# Endpoint (path after /api/v3/) -> parameters it accepts. Exactly the calls freqtrade 2026.9
# made against the gateway: download-data (exchangeInfo, klines), backtest and hyperopt
# (exchangeInfo), a dry-run bot (exchangeInfo, time, klines, depth with order-book pricing,
# ticker/24hr with ticker pricing).
ENDPOINT_PARAMS: dict[str, frozenset[str]] = {
    "time": frozenset(),
    "exchangeInfo": frozenset(
        {"symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus"}
    ),
    "klines": frozenset({"symbol", "interval", "startTime", "endTime", "limit"}),
    "ticker/24hr": frozenset({"symbol", "symbols", "type"}),
    "depth": frozenset({"symbol", "limit"}),
}


@dataclass(frozen=True)
class Answer:
    """What the gateway answers: a status, a JSON body and, when busy, when to come back."""

    status: int
    body: bytes
    retry_after: int | None = None  # seconds


class BinanceError(Exception):
    """An error answered as Binance does: HTTP status plus {"code", "msg"}."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg

    def body(self) -> dict[str, int | str]:
        return {"code": self.code, "msg": self.msg}


def _illegal(name: str, pattern: str) -> BinanceError:
    return BinanceError(
        400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '{pattern}'."
    )


def _mandatory(name: str) -> BinanceError:
    return BinanceError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def invalid_symbol() -> BinanceError:
    return BinanceError(400, -1121, "Invalid symbol.")


@dataclass(frozen=True)
class Request:
    """The validated parameters of one whitelisted request."""

    endpoint: str
    symbols: tuple[str, ...] = ()  # from `symbol` or `symbols`; empty means "all"
    single_symbol: bool = False  # sent as `symbol` (answer an object, not a list)
    interval: str = ""
    start_time: int | None = None
    end_time: int | None = None
    limit: int | None = None
    extra: tuple[tuple[str, str], ...] = ()  # other accepted parameters, already checked

    def upstream_params(self) -> list[tuple[str, str]]:
        """The parameters to forward, rebuilt from validated values only."""
        params: list[tuple[str, str]] = []
        if self.single_symbol:
            params.append(("symbol", self.symbols[0]))
        elif self.symbols:
            params.append(("symbols", json.dumps(list(self.symbols), separators=(",", ":"))))
        if self.interval:
            params.append(("interval", self.interval))
        if self.start_time is not None:
            params.append(("startTime", str(self.start_time)))
        if self.end_time is not None:
            params.append(("endTime", str(self.end_time)))
        if self.limit is not None:
            params.append(("limit", str(self.limit)))
        params.extend(self.extra)
        return params


def _uint(name: str, raw: str | None) -> int | None:
    if raw is None:
        return None
    if not _UINT_RE.fullmatch(raw):
        raise _illegal(name, "^[0-9]{1,20}$")
    return int(raw)


def _symbol(raw: str, known: Callable[[str], bool]) -> str:
    if not _SYMBOL_RE.fullmatch(raw):
        raise _illegal("symbol", "^[A-Z0-9-_.]{1,20}$")
    if not known(raw):
        raise invalid_symbol()
    return raw


def _symbols(raw: str, known: Callable[[str], bool]) -> tuple[str, ...]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise _illegal("symbols", '^\\["[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}\\]$') from None
    if (
        not isinstance(parsed, list)
        or not parsed
        or len(parsed) > MAX_SYMBOLS_PER_REQUEST
        or not all(isinstance(item, str) for item in parsed)
    ):
        raise _illegal("symbols", '^\\["[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}\\]$')
    return tuple(dict.fromkeys(_symbol(item, known) for item in parsed))


def _single(params: Sequence[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for name, value in params:
        if name in seen:
            raise BinanceError(400, -1101, f"Duplicate values for parameter '{name}'.")
        seen[name] = value
    return seen


def parse_request(
    endpoint: str,
    query: Sequence[tuple[str, str]],
    known_symbol: Callable[[str], bool],
    known_interval: Callable[[str], bool],
) -> Request:
    """Validate the query of a whitelisted endpoint; raise BinanceError when it is bad.

    `known_symbol` and `known_interval` tell which symbols and intervals the current mode
    can serve (replay: the fixture's markets and fixed-length intervals).
    """
    accepted = ENDPOINT_PARAMS[endpoint]
    params = _single(query)
    unread = [name for name in params if name not in accepted]
    if unread:
        raise BinanceError(
            400,
            -1104,
            f"Not all sent parameters were read; read '{len(params) - len(unread)}' "
            f"parameter(s) but was sent '{len(params)}'.",
        )
    if "symbol" in params and "symbols" in params:
        raise BinanceError(400, -1106, "Parameter 'symbols' sent when not required.")

    symbols: tuple[str, ...] = ()
    single = "symbol" in params
    if single:
        symbols = (_symbol(params["symbol"], known_symbol),)
    elif "symbols" in params:
        symbols = _symbols(params["symbols"], known_symbol)

    if endpoint == "klines":
        return _parse_klines(params, symbols, known_interval)
    if endpoint == "depth":
        if not single:
            raise _mandatory("symbol")
        limit = _uint("limit", params.get("limit"))
        if limit is not None and not 1 <= limit <= DEPTH_MAX_LIMIT:
            raise BinanceError(400, -1128, "Combination of optional parameters invalid.")
        return Request(endpoint, symbols, True, limit=limit)

    extra: list[tuple[str, str]] = []
    if endpoint == "ticker/24hr" and "type" in params:
        if params["type"] not in ("FULL", "MINI"):
            raise _illegal("type", "^(FULL|MINI)$")
        extra.append(("type", params["type"]))
    if endpoint == "exchangeInfo":
        extra.extend(_exchange_info_extra(params))
    return Request(endpoint, symbols, single, extra=tuple(extra))


def _exchange_info_extra(params: dict[str, str]) -> list[tuple[str, str]]:
    extra: list[tuple[str, str]] = []
    if "showPermissionSets" in params:
        if params["showPermissionSets"] not in ("true", "false"):
            raise _illegal("showPermissionSets", "^(true|false)$")
        extra.append(("showPermissionSets", params["showPermissionSets"]))
    if "symbolStatus" in params:
        if params["symbolStatus"] not in ("TRADING", "HALT", "BREAK"):
            raise _illegal("symbolStatus", "^(TRADING|HALT|BREAK)$")
        extra.append(("symbolStatus", params["symbolStatus"]))
    if "permissions" in params:
        value = params["permissions"]
        if not re.fullmatch(r'SPOT|\["SPOT"\]', value):
            raise _illegal("permissions", '^(SPOT|\\["SPOT"\\])$')
        extra.append(("permissions", value))
    return extra


def _parse_klines(
    params: dict[str, str], symbols: tuple[str, ...], known_interval: Callable[[str], bool]
) -> Request:
    if "symbols" in params:
        raise BinanceError(400, -1106, "Parameter 'symbols' sent when not required.")
    if not symbols:
        raise _mandatory("symbol")
    interval = params.get("interval")
    if not interval:
        raise _mandatory("interval")
    if interval not in BINANCE_INTERVALS or not known_interval(interval):
        raise BinanceError(400, -1120, "Invalid interval.")
    start = _uint("startTime", params.get("startTime"))
    end = _uint("endTime", params.get("endTime"))
    if start is not None and end is not None and start > end:
        raise BinanceError(400, -1023, "Start time is greater than end time.")
    limit = _uint("limit", params.get("limit"))
    if limit is not None:
        if limit < 1:
            raise _illegal("limit", "^[1-9][0-9]{0,19}$")
        limit = min(limit, KLINES_MAX_LIMIT)
    return Request(
        "klines", symbols, True, interval=interval, start_time=start, end_time=end, limit=limit
    )
