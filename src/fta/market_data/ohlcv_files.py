"""freqtrade's own OHLCV files, read and checked before any candle of them is imported.

freqtrade names a spot file `<BASE>_<QUOTE>-<timeframe>.<ext>` and writes, in its `json`
format, `[[open_ms, open, high, low, close, volume], ...]`; `jsongz` is the same gzipped
(`.json.gz`). `feather` (freqtrade's default) needs pyarrow, which the platform's image does not
carry: such files are refused with the command that converts them on the machine that
downloaded them.

Prices and volumes stay the binary floats freqtrade wrote (and computes with): nothing here
rounds them.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fta.markets import INTERVAL_MS, interval_open

# freqtrade's spot OHLCV file names; other market types and trades files do not match.
_FILE_RE = re.compile(
    r"([A-Z0-9]{1,20})_([A-Z0-9]{1,20})-([0-9]{1,2}[mhdw])\.(json|json\.gz|feather)"
)
FORMATS = {"json": "json", "json.gz": "jsongz", "feather": "feather"}
CONVERT_HINT = (
    "convert it where it was downloaded: freqtrade convert-data --format-from feather "
    "--format-to jsongz --datadir <dir> --timeframes <tf>"
)


@dataclass(frozen=True)
class Candle:
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class OhlcvFile:
    path: Path
    pair: str  # "BTC/USDT"
    timeframe: str
    format: str  # json | jsongz | feather


class OhlcvFileError(ValueError):
    """A file that cannot be imported; the message names the file (and row)."""


def recognise(path: Path) -> OhlcvFile | None:
    """What a file name says it holds, or None for a name freqtrade gives no spot OHLCV file."""
    match = _FILE_RE.fullmatch(path.name)
    if match is None:
        return None
    base, quote, timeframe, extension = match.groups()
    return OhlcvFile(path, f"{base}/{quote}", timeframe, FORMATS[extension])


def read(file: OhlcvFile) -> list[Candle]:
    """The file's candles, checked: refused (OhlcvFileError) at the first problem."""
    if file.timeframe not in INTERVAL_MS:
        raise OhlcvFileError(f"{file.path}: timeframe {file.timeframe} is not supported")
    if file.format == "feather":
        raise OhlcvFileError(f"{file.path}: feather files are not read here; {CONVERT_HINT}")
    try:
        raw = file.path.read_bytes()
        if file.format == "jsongz":
            raw = gzip.decompress(raw)
        rows = json.loads(raw)
    except (OSError, EOFError, ValueError) as exc:
        raise OhlcvFileError(f"{file.path}: not readable as {file.format}: {exc}") from None
    return check_rows(str(file.path), rows, file.timeframe)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def check_rows(name: str, rows: object, timeframe: str) -> list[Candle]:
    """Rows in freqtrade's layout as candles: sorted, unique, aligned to the timeframe, prices
    positive and consistent (low <= open, close <= high), volumes not negative."""
    if not isinstance(rows, list):
        raise OhlcvFileError(f"{name}: expected a list of [time, open, high, low, close, volume]")
    if not rows:
        raise OhlcvFileError(f"{name}: holds no candle")
    candles: list[Candle] = []
    for index, row in enumerate(rows, start=1):
        candle = _candle(name, index, row, timeframe)
        if candles and candle.open_ms <= candles[-1].open_ms:
            what = "repeats" if candle.open_ms == candles[-1].open_ms else "comes before"
            raise OhlcvFileError(
                f"{name}: row {index}: candle {_when(candle.open_ms)} {what} the row before "
                "(candles must be sorted, each once)"
            )
        candles.append(candle)
    return candles


def _candle(name: str, index: int, row: object, timeframe: str) -> Candle:
    where = f"{name}: row {index}"
    if not isinstance(row, list) or len(row) != 6:
        raise OhlcvFileError(f"{where}: expected [time, open, high, low, close, volume]")
    numbers = [_number(value) for value in row]
    if any(number is None for number in numbers):
        raise OhlcvFileError(f"{where}: every field must be a finite number")
    time, open_, high, low, close, volume = (n for n in numbers if n is not None)
    if time != int(time) or time < 0:
        raise OhlcvFileError(f"{where}: time must be whole milliseconds since 1970")
    open_ms = int(time)
    if interval_open(timeframe, open_ms) != open_ms:
        raise OhlcvFileError(f"{where}: {_when(open_ms)} is not the start of a {timeframe} candle")
    if min(open_, high, low, close) <= 0:
        raise OhlcvFileError(f"{where}: prices must be positive")
    if volume < 0:
        raise OhlcvFileError(f"{where}: volume must not be negative")
    if not low <= min(open_, close) or not max(open_, close) <= high:
        raise OhlcvFileError(f"{where}: low <= open, close <= high does not hold")
    return Candle(open_ms, open_, high, low, close, volume)


def _when(open_ms: int) -> str:
    return datetime.fromtimestamp(open_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
