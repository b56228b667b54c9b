"""A job's own result file read for its owner's pages: freqtrade's backtest zip and hyperopt
epochs become trades, ratios, an equity curve and epochs; a file its tenant's code forged (a
zip bomb, markup, absurd numbers, nesting) gives no details or cut, inert text, never an
error or an unbounded read."""

from __future__ import annotations

import io
import json
import zipfile
from decimal import Decimal
from typing import Any

from fta.jobs import result_files
from fta.jobs.result_files import EquityPoint, Trade, equity_curve, read_backtest, read_epochs

NAME = "backtest-result-2024-01-03_00-00-00.zip"
MEMBER = "backtest-result-2024-01-03_00-00-00.json"
SUMMARY = {"strategy": "Quick", "starting_balance": 1000, "backtest_start_ms": 1_704_067_200_000}
HOUR = 3_600_000
START = 1_704_067_200_000


def _trade(pair: str, opened: int, closed: int, profit: str, **more: Any) -> dict[str, Any]:
    return {
        "pair": pair,
        "open_timestamp": START + opened * HOUR,
        "close_timestamp": START + closed * HOUR,
        "open_rate": 100.0,
        "close_rate": 101.0,
        "amount": 1.0,
        "stake_amount": 100.0,
        "profit_ratio": float(profit) / 100,
        "profit_abs": float(profit),
        "trade_duration": (closed - opened) * 60,
        "exit_reason": "roi",
        "is_open": False,
        "orders": [{"amount": 1.0}],
        **more,
    }


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _result(trades: list[dict[str, Any]], **ratios: Any) -> bytes:
    document = {"strategy": {"Quick": {"trades": trades, "sharpe": 1.5, **ratios}}}
    return json.dumps(document).encode()


def test_the_equity_curve_is_the_balance_after_each_trade_by_closing_time() -> None:
    trades = [
        _trade("ETH/USDT", 1, 5, "10"),
        _trade("BTC/USDT", 0, 2, "-4"),  # opened first, closed first
        _trade("BTC/USDT", 6, 8, "-20"),
        _trade("ETH/USDT", 7, 9, "30"),
    ]
    details = read_backtest(_zip({MEMBER: _result(trades)}), NAME, SUMMARY)
    assert details is not None
    assert details.ratios.sharpe == Decimal("1.5") and details.ratios.sortino is None
    assert [(point.time_ms - START) // HOUR for point in details.equity] == [0, 2, 5, 8, 9]
    assert [point.equity for point in details.equity] == [1000, 996, 1006, 986, 1016]
    assert [point.drawdown_abs for point in details.equity] == [0, -4, 0, -20, 0]
    assert details.equity[3].drawdown_pct is not None
    assert round(details.equity[3].drawdown_pct, 4) == Decimal("-1.9881")  # 20 below 1006


def test_without_a_starting_balance_the_curve_is_the_cumulative_profit() -> None:
    trades = [Trade.model_validate(_trade("BTC/USDT", 0, 1, "-5"))]
    assert equity_curve(trades, None) == [
        EquityPoint(START, Decimal(0), Decimal(0), None),
        EquityPoint(START + HOUR, Decimal(-5), Decimal(-5), None),
    ]
    assert equity_curve([], Decimal(1000)) == []


def test_a_long_curve_is_thinned_for_the_chart_keeping_its_ends_and_its_deepest_point() -> None:
    points = [
        EquityPoint(
            index, Decimal(1000 - (index == 777) * 500), Decimal(-(index == 777) * 500), None
        )
        for index in range(10_000)
    ]
    thinned = result_files.thinned(points, 100)
    assert 99 <= len(thinned) <= 101
    assert thinned[0] == points[0] and thinned[-1] == points[-1] and points[777] in thinned
    assert [point.time_ms for point in thinned] == sorted(point.time_ms for point in thinned)


def test_text_a_strategy_wrote_is_kept_as_cut_printable_text() -> None:
    markup = '<img src=x onerror="alert(1)">\x1b[31m' + "x" * 500
    trades = [_trade("BTC/USDT", 0, 1, "1", enter_tag=markup, exit_reason="a\nb")]
    details = read_backtest(_zip({MEMBER: _result(trades)}), NAME, SUMMARY)
    assert details is not None
    (trade,) = details.trades
    assert trade.enter_tag is not None and trade.enter_tag.startswith(
        '<img src=x onerror="alert(1)">?'
    )
    assert len(trade.enter_tag) == result_files.MAX_TEXT
    assert trade.exit_reason == "a?b"


def test_a_forged_result_file_gives_no_details() -> None:
    good = [_trade("BTC/USDT", 0, 1, "1")]
    bomb = b'{"strategy": {"Quick": {"trades": []}}, "pad": "' + b"0" * (40 * 1024 * 1024) + b'"}'
    forged = [
        b"not a zip",
        _zip({"other.json": _result(good)}),  # not the member freqtrade writes
        _zip({MEMBER: bomb}),  # 40 MiB of zeros in a few kilobytes: read up to the cap only
        _zip({MEMBER: _result(good).replace(b"1.5", b"NaN")}),
        _zip({MEMBER: _result(good).replace(b"1.5", b"1e300")}),
        _zip({MEMBER: b"[" * 100_000 + b"]" * 100_000}),
        _zip({MEMBER: _result([{**good[0], "open_timestamp": -1}])}),
        _zip(
            {MEMBER: json.dumps({"strategy": {"A": {"trades": []}, "B": {"trades": []}}}).encode()}
        ),
        _zip({MEMBER: _result(good)}, zipfile.ZIP_LZMA)[:-40],  # truncated
    ]
    assert len(_zip({MEMBER: bomb})) < 100_000
    for content in forged:
        assert read_backtest(content, NAME, SUMMARY) is None
    # The member is named after the stored file, whatever path the name pretends.
    assert read_backtest(_zip({MEMBER: _result(good)}), f"../../{NAME}", SUMMARY) is not None


def test_epochs_are_read_line_by_line_and_forged_lines_left_out() -> None:
    def epoch(number: int, loss: float | str, **more: Any) -> bytes:
        line = {
            "current_epoch": number,
            "loss": loss,
            "is_best": number == 2,
            "params_dict": {"buy_rsi": 30 + number, "<b>": "<script>x</script>"},
            "results_metrics": {"total_trades": 3, "profit_total": 0.01, "trades": [{}] * 5},
            **more,
        }
        return json.dumps(line).encode().replace(b'"NaN"', b"NaN")

    content = b"\n".join(
        [
            epoch(1, 2.5),
            epoch(2, -1.25),
            epoch(3, "NaN"),
            b"{",
            b"",
            epoch(4, 0.5)[:-5],
            epoch(5, 1),
        ]
    )
    epochs = read_epochs(content)
    assert [(e.current_epoch, e.loss, e.is_best) for e in epochs] == [
        (1, Decimal("2.5"), False),
        (2, Decimal("-1.25"), True),
        (5, Decimal(1), False),
    ]
    assert epochs[0].params_dict == {"buy_rsi": 31, "<b>": "<script>x</script>"}
    assert epochs[0].results_metrics.total_trades == 3
    many = b"\n".join([epoch(1, 1)] * (result_files.MAX_EPOCHS + 50))
    assert len(read_epochs(many)) == result_files.MAX_EPOCHS
