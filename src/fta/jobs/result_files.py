"""What a finished job's own result file shows beyond its summary, read for its owner's pages:
a backtest's trades (its equity curve and trades table) and the ratios freqtrade computed, a
hyperopt's epochs.

The file was written in the tenant's container, by the tenant's code, so it is read as hostile
input, and only for that tenant: of a backtest's zip one member, at most `MAX_JSON_BYTES` once
decompressed (a zip bomb stops there); of a hyperopt's epochs file at most `MAX_EPOCHS` lines.
JSON is parsed into strict models (finite, bounded numbers; text cut to `MAX_TEXT` printable
characters; bounded lists; other keys ignored). A file that does not fit gives no details and
the page shows the stored summary alone. A tenant can fake its own details, as its own
summary, and nobody else's.
"""

from __future__ import annotations

import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy.orm import Session

from fta.jobs.models import Job, JobArchive, JobKind, JobStatus

MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_TRADES = 50_000
MAX_EPOCHS = 2_000
MAX_TEXT = 100
MAX_CHART_POINTS = 2_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# What reading a hostile zip or JSON document may raise; anything else is a bug.
_UNREADABLE = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    KeyError,
    ValueError,  # pydantic's ValidationError, invalid JSON
    EOFError,
    OSError,  # bz2
    RuntimeError,  # an encrypted member, recursion
    NotImplementedError,  # an unknown compression
    zlib.error,
    lzma.LZMAError,
)


def _text(value: Any) -> Any:
    if isinstance(value, str):
        return _CONTROL.sub("?", value)[:MAX_TEXT]
    return value


Text = Annotated[str, BeforeValidator(_text)]
Number = Annotated[Decimal, Field(allow_inf_nan=False, ge=-(10**15), le=10**15)]
Count = Annotated[int, Field(ge=0, le=10**12)]
TimeMs = Annotated[int, Field(ge=0, le=10**14)]
ParamValue = bool | Number | Text | None


class _Loose(BaseModel):
    """freqtrade's own documents: many more keys than shown, ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Trade(_Loose):
    pair: Text
    is_short: bool = False
    open_timestamp: TimeMs
    close_timestamp: TimeMs | None = None
    open_rate: Number | None = None
    close_rate: Number | None = None
    amount: Number | None = None
    stake_amount: Number | None = None
    profit_ratio: Number | None = None
    profit_abs: Number | None = None
    trade_duration: Count | None = None  # minutes
    exit_reason: Text | None = None
    enter_tag: Text | None = None
    is_open: bool = False


class _StrategyResult(_Loose):
    trades: Annotated[list[Trade], Field(max_length=MAX_TRADES)]
    sharpe: Number | None = None
    sortino: Number | None = None
    calmar: Number | None = None
    sqn: Number | None = None
    profit_factor: Number | None = None
    expectancy: Number | None = None
    expectancy_ratio: Number | None = None
    cagr: Number | None = None
    market_change: Number | None = None
    trades_per_day: Number | None = None
    holding_avg_s: Number | None = None
    max_consecutive_wins: Count | None = None
    max_consecutive_losses: Count | None = None
    backtest_best_day_abs: Number | None = None
    backtest_worst_day_abs: Number | None = None


class _BacktestFile(_Loose):
    strategy: Annotated[dict[Text, _StrategyResult], Field(min_length=1, max_length=20)]


@dataclass(frozen=True)
class BacktestRatios:
    """freqtrade's ratios of the run, which the stored summary does not carry."""

    sharpe: Decimal | None
    sortino: Decimal | None
    calmar: Decimal | None
    sqn: Decimal | None
    profit_factor: Decimal | None
    expectancy: Decimal | None
    expectancy_ratio: Decimal | None
    cagr: Decimal | None
    market_change: Decimal | None
    trades_per_day: Decimal | None
    holding_avg_s: Decimal | None
    max_consecutive_wins: int | None
    max_consecutive_losses: int | None
    best_day_abs: Decimal | None
    worst_day_abs: Decimal | None


@dataclass(frozen=True)
class EquityPoint:
    time_ms: int
    equity: Decimal
    # Below the highest equity reached so far: 0 or negative.
    drawdown_abs: Decimal
    drawdown_pct: Decimal | None


@dataclass(frozen=True)
class BacktestDetails:
    trades: list[Trade]
    ratios: BacktestRatios
    equity: list[EquityPoint]


class Epoch(_Loose):
    class Metrics(_Loose):
        total_trades: Count = 0
        profit_total: Number | None = None  # a ratio
        profit_total_abs: Number | None = None
        max_drawdown_account: Number | None = None  # a ratio
        winrate: Number | None = None
        sharpe: Number | None = None
        holding_avg_s: Number | None = None

    current_epoch: Count
    loss: Number | None = None
    is_best: bool = False
    is_initial_point: bool = False
    params_dict: Annotated[dict[Text, ParamValue], Field(max_length=500)] = {}
    results_metrics: Metrics = Metrics()


def _archive(session: Session, job: Job) -> JobArchive | None:
    if job.output_pruned_at is not None or JobStatus(job.status) is not JobStatus.SUCCEEDED:
        return None
    return session.get(JobArchive, job.id)


def _read_member(content: bytes, name: str) -> bytes | None:
    """The member `name` of the zip `content`, or None past MAX_JSON_BYTES: read up to the
    cap whatever its header declares."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive, archive.open(name) as member:
        data = member.read(MAX_JSON_BYTES + 1)
    return data if len(data) <= MAX_JSON_BYTES else None


def backtest_details(
    session: Session, job: Job, summary: Mapping[str, Any]
) -> BacktestDetails | None:
    """The trades and ratios of a succeeded backtest of the tenant's, from its result file, with
    its equity curve from the summary's starting balance; None when the file is gone
    (retention) or does not read as freqtrade's.

    `job` is the caller's, got for its tenant (`fta.jobs.service.get_job`), and `summary` its
    stored result summary."""
    if job.kind != JobKind.BACKTEST:
        return None
    archive = _archive(session, job)
    if archive is None:
        return None
    return read_backtest(archive.content, archive.filename, summary)


def read_backtest(
    content: bytes, filename: str, summary: Mapping[str, Any]
) -> BacktestDetails | None:
    """What freqtrade's backtest zip `content` (stored as `filename`) holds of the strategy the
    summary names, or None when it does not read as one."""
    member = PurePosixPath(filename).with_suffix(".json").name
    try:
        data = _read_member(content, member)
        if data is None:
            return None
        document = _BacktestFile.model_validate_json(data)
    except _UNREADABLE:
        return None
    result = document.strategy.get(str(summary.get("strategy")))
    if result is None:
        if len(document.strategy) != 1:
            return None
        (result,) = document.strategy.values()
    ratios = BacktestRatios(
        sharpe=result.sharpe,
        sortino=result.sortino,
        calmar=result.calmar,
        sqn=result.sqn,
        profit_factor=result.profit_factor,
        expectancy=result.expectancy,
        expectancy_ratio=result.expectancy_ratio,
        cagr=result.cagr,
        market_change=result.market_change,
        trades_per_day=result.trades_per_day,
        holding_avg_s=result.holding_avg_s,
        max_consecutive_wins=result.max_consecutive_wins,
        max_consecutive_losses=result.max_consecutive_losses,
        best_day_abs=result.backtest_best_day_abs,
        worst_day_abs=result.backtest_worst_day_abs,
    )
    balance = summary.get("starting_balance")
    start_ms = summary.get("backtest_start_ms")
    equity = equity_curve(
        result.trades,
        Decimal(str(balance)) if isinstance(balance, int | float) else None,
        start_ms if isinstance(start_ms, int) else None,
    )
    return BacktestDetails(result.trades, ratios, equity)


def equity_curve(
    trades: list[Trade], starting_balance: Decimal | None, start_ms: int | None = None
) -> list[EquityPoint]:
    """The account's equity after each closed trade, by close time: the starting balance (0
    when unknown: the curve is then the cumulative profit) plus the profits of the trades
    closed so far, with the drawdown from the highest equity before it. A first point at the
    first trade's opening (or `start_ms`) holds the starting balance."""
    closed = sorted(
        (
            trade
            for trade in trades
            if not trade.is_open
            and trade.close_timestamp is not None
            and trade.profit_abs is not None
        ),
        key=lambda trade: (trade.close_timestamp, trade.open_timestamp),
    )
    if not closed:
        return []
    equity = starting_balance if starting_balance is not None else Decimal(0)
    first_ms = min(trade.open_timestamp for trade in closed)
    if start_ms is not None:
        first_ms = min(first_ms, start_ms)
    peak = equity
    points = [EquityPoint(first_ms, equity, Decimal(0), Decimal(0) if peak > 0 else None)]
    for trade in closed:
        assert trade.close_timestamp is not None and trade.profit_abs is not None  # noqa: S101
        equity += trade.profit_abs
        peak = max(peak, equity)
        below = equity - peak
        pct = below / peak * 100 if peak > 0 else None
        points.append(EquityPoint(trade.close_timestamp, equity, below, pct))
    return points


def thinned(points: list[EquityPoint], limit: int = MAX_CHART_POINTS) -> list[EquityPoint]:
    """At most `limit` points for a chart: evenly spaced ones, with the first, the last and the
    deepest drawdown kept."""
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 2)
    keep = {round(index * step) for index in range(limit - 1)}
    keep |= {0, len(points) - 1, min(range(len(points)), key=lambda i: points[i].drawdown_abs)}
    return [points[index] for index in sorted(keep)]


def hyperopt_epochs(session: Session, job: Job) -> list[Epoch] | None:
    """Every epoch of a succeeded hyperopt of the tenant's, from its epochs file; None when the
    file is gone.

    `job` is the caller's, got for its tenant (`fta.jobs.service.get_job`)."""
    if job.kind != JobKind.HYPEROPT:
        return None
    archive = _archive(session, job)
    if archive is None:
        return None
    return read_epochs(archive.content)


def read_epochs(content: bytes) -> list[Epoch]:
    """The epochs of freqtrade's epochs file `content` (JSON lines), in file order, the first
    `MAX_EPOCHS` lines at most; a line that does not read as an epoch is left out."""
    epochs = []
    for line in content.split(b"\n", MAX_EPOCHS)[:MAX_EPOCHS]:
        if not line.strip():
            continue
        try:
            epochs.append(Epoch.model_validate_json(line))
        except (ValueError, RecursionError):
            continue
    return epochs
