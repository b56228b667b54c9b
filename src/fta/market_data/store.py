"""The recorded candle store: what `fta market-data import` writes and the gateway serves in
`recorded` mode.

One file per exchange, market and timeframe, `<root>/<exchange>/<SYMBOL>-<timeframe>.candles`
(SYMBOL is the exchange's id, e.g. BTCUSDT): fixed-size little-endian records of the open time
(ms) and open, high, low, close, volume as the float64 freqtrade holds them, sorted by open
time. A request reads only the records it answers (a binary search on the open time), so a
year of minutes costs the gateway no memory; a file is replaced whole (written aside, then
renamed), so a reader sees the old series or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from fta.market_data.ohlcv_files import Candle

RECORD = struct.Struct("<q5d")
SUFFIX = ".candles"
_NAME_RE = re.compile(r"([A-Z0-9]{1,40})-([0-9]{1,2}[mhdw])\.candles")


def series_path(root: str | Path, exchange: str, symbol: str, timeframe: str) -> Path:
    return Path(root, exchange, f"{symbol}-{timeframe}{SUFFIX}")


def held(root: str | Path, exchange: str) -> dict[str, set[str]]:
    """Symbol -> timeframes the store holds for `exchange`."""
    try:
        names = os.listdir(Path(root, exchange))
    except FileNotFoundError:
        return {}
    result: dict[str, set[str]] = {}
    for name in names:
        match = _NAME_RE.fullmatch(name)
        if match is not None:
            result.setdefault(match.group(1), set()).add(match.group(2))
    return result


def encode(candles: Iterable[Candle]) -> bytes:
    return b"".join(
        RECORD.pack(c.open_ms, c.open, c.high, c.low, c.close, c.volume) for c in candles
    )


def decode(data: bytes) -> list[Candle]:
    return [Candle(*fields) for fields in RECORD.iter_unpack(data)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_series(path: Path, candles: list[Candle]) -> bytes:
    """Replaces the series at `path` whole; returns the bytes written."""
    data = encode(candles)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with aside.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    aside.replace(path)
    return data


def read_series(path: Path) -> list[Candle]:
    try:
        return decode(path.read_bytes())
    except FileNotFoundError:
        return []


def _open_at(handle: BinaryIO, index: int) -> int:
    handle.seek(index * RECORD.size)
    (open_ms,) = struct.unpack("<q", handle.read(8))
    return int(open_ms)


def _first_at_or_after(handle: BinaryIO, count: int, time_ms: int) -> int:
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        if _open_at(handle, middle) < time_ms:
            low = middle + 1
        else:
            high = middle
    return low


def read_window(path: Path, start_ms: int | None, end_ms: int | None, limit: int) -> list[Candle]:
    """At most `limit` candles opening within [start_ms, end_ms], as Binance's klines picks
    them: the first ones from `start_ms` when it is given, else the last ones up to `end_ms`."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        count = os.fstat(handle.fileno()).st_size // RECORD.size
        first = 0 if start_ms is None else _first_at_or_after(handle, count, start_ms)
        stop = count if end_ms is None else _first_at_or_after(handle, count, end_ms + 1)
        if start_ms is not None:
            stop = min(stop, first + limit)
        else:
            first = max(first, stop - limit)
        if first >= stop:
            return []
        handle.seek(first * RECORD.size)
        return decode(handle.read((stop - first) * RECORD.size))
