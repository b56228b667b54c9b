"""freqtrade's OHLCV files as the import reads them, and the store it writes."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fta.market_data import store
from fta.market_data.ohlcv_files import Candle, OhlcvFileError, read, recognise

JAN_1 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
FIVE_MINUTES = 300_000


def rows(count: int, start: int = JAN_1) -> list[list[float]]:
    return [
        [start + i * FIVE_MINUTES, 100.0 + i, 101.5 + i, 99.25 + i, 100.5 + i, 12.125]
        for i in range(count)
    ]


def write(path: Path, content: object, *, gz: bool = False) -> Path:
    data = json.dumps(content).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def read_file(path: Path) -> list[Candle]:
    file = recognise(path)
    assert file is not None
    return read(file)


def test_file_names_say_pair_timeframe_and_format(tmp_path: Path) -> None:
    json_file = recognise(tmp_path / "BTC_USDT-5m.json")
    assert json_file is not None
    assert (json_file.pair, json_file.timeframe, json_file.format) == ("BTC/USDT", "5m", "json")
    gz_file = recognise(tmp_path / "ETH_BTC-1h.json.gz")
    assert gz_file is not None and (gz_file.pair, gz_file.format) == ("ETH/BTC", "jsongz")
    # Futures, trades and foreign names are not spot OHLCV files.
    for name in ("BTC_USDT_USDT-5m-futures.feather", "BTC_USDT-trades.json", "btc_usdt-5m.json"):
        assert recognise(tmp_path / name) is None


def test_json_and_jsongz_read_the_same_candles(tmp_path: Path) -> None:
    plain = read_file(write(tmp_path / "BTC_USDT-5m.json", rows(3)))
    packed = read_file(write(tmp_path / "BTC_USDT-5m.json.gz", rows(3), gz=True))
    assert plain == packed
    assert plain[1] == Candle(JAN_1 + FIVE_MINUTES, 101.0, 102.5, 100.25, 101.5, 12.125)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.__setitem__(2, r[1]), "row 3: candle 2024-01-01 00:05 UTC repeats"),
        (lambda r: r.reverse(), "row 2: candle 2024-01-01 00:05 UTC comes before"),
        (lambda r: r[1].__setitem__(0, JAN_1 + 60_000), "row 2: 2024-01-01 00:01 UTC is not"),
        (lambda r: r[0].__setitem__(3, 0), "row 1: prices must be positive"),
        (lambda r: r[0].__setitem__(2, 99.0), "row 1: low <= open, close <= high"),
        (lambda r: r[2].__setitem__(5, -1), "row 3: volume must not be negative"),
        (lambda r: r[1].__setitem__(4, "100.5"), "row 2: every field must be a finite number"),
        (lambda r: r[0].pop(), "row 1: expected [time, open, high, low, close, volume]"),
    ],
)
def test_bad_rows_are_refused_naming_file_and_row(
    tmp_path: Path, change: Callable[[list[Any]], object], message: str
) -> None:
    content: list[Any] = rows(3)
    change(content)
    path = write(tmp_path / "BTC_USDT-5m.json", content)
    with pytest.raises(OhlcvFileError) as refused:
        read_file(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert message in str(refused.value)


def test_empty_broken_and_feather_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OhlcvFileError, match="holds no candle"):
        read_file(write(tmp_path / "BTC_USDT-5m.json", []))
    (tmp_path / "ETH_USDT-5m.json.gz").write_bytes(b"not gzip")
    with pytest.raises(OhlcvFileError, match="not readable as jsongz"):
        read_file(tmp_path / "ETH_USDT-5m.json.gz")
    (tmp_path / "XRP_USDT-5m.feather").write_bytes(b"")
    with pytest.raises(OhlcvFileError, match="freqtrade convert-data --format-from feather"):
        read_file(tmp_path / "XRP_USDT-5m.feather")


def test_the_store_answers_windows_as_binance_klines_pick_them(tmp_path: Path) -> None:
    candles = read_file(write(tmp_path / "BTC_USDT-5m.json", rows(10)))
    path = store.series_path(tmp_path / "store", "binance", "BTCUSDT", "5m")
    data = store.write_series(path, candles)
    assert store.read_series(path) == candles
    assert store.sha256(data) == store.sha256(path.read_bytes())
    assert store.held(tmp_path / "store", "binance") == {"BTCUSDT": {"5m"}}

    def opens(start: int | None, end: int | None, limit: int) -> list[int]:
        return [c.open_ms - JAN_1 for c in store.read_window(path, start, end, limit)]

    step = FIVE_MINUTES
    assert opens(None, None, 3) == [7 * step, 8 * step, 9 * step]  # the newest
    assert opens(JAN_1 + 1, None, 2) == [step, 2 * step]  # from the first open at or after
    assert opens(JAN_1 + 2 * step, JAN_1 + 4 * step, 100) == [2 * step, 3 * step, 4 * step]
    assert opens(None, JAN_1 + 4 * step, 2) == [3 * step, 4 * step]
    # Outside the held range: nothing, never a made-up candle.
    assert opens(JAN_1 + 10 * step, None, 5) == []
    assert opens(None, JAN_1 - 1, 5) == []
    assert store.read_window(tmp_path / "missing.candles", None, None, 5) == []
