"""The result summary a job container prints as its last stdout line, validated strictly.

The line comes from a container that ran hostile code: the worker accepts it only when it is
small (`MAX_RESULT_LINE_BYTES`), valid JSON whose floats are read as Decimal (no binary
rounding, no NaN or infinity), and matches one of these schemas exactly (no extra keys,
bounded strings, numbers and lists). Anything else is no summary at all.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from fta.freqtrade.markers import RESULT_PREFIX

MAX_RESULT_LINE_BYTES = 256 * 1024
MAX_ROWS = 100

Number = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=30, decimal_places=12)]
Count = Annotated[int, Field(ge=0, le=10**12)]
TimeMs = Annotated[int, Field(ge=0, le=10**14)]
# Printable text only: summaries end up in logs and web pages.
Text = Annotated[str, Field(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]
ParamValue = bool | Number | Text | None
# A parameter file's numbers are freqtrade's own floats, digit for digit (the container entry
# sends only finite ones between 1e-15 and 1e15 in magnitude).
ExactNumber = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=40)]


class _Summary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataPairRow(_Summary):
    pair: Text
    candles: Count
    first_ms: TimeMs | None
    last_ms: TimeMs | None


class DataFingerprint(_Summary):
    """The candles a job ran on: SHA-256 over them in a canonical form (see the container
    entry's `data_fingerprint`), from the range's start less the strategy's startup candles
    through its end."""

    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    startup_candles: Count
    pairs: Annotated[list[DataPairRow], Field(max_length=MAX_ROWS)]


class BacktestPairRow(_Summary):
    pair: Text
    trades: Count
    profit_total_pct: Number | None
    profit_total_abs: Number | None
    win_rate: Number | None


class BacktestSummary(_Summary):
    kind: Literal["backtest"]
    strategy: Text
    timeframe: Text
    timerange: Text
    stake_currency: Text
    backtest_start_ms: TimeMs | None
    backtest_end_ms: TimeMs | None
    trades: Count
    wins: Count
    losses: Count
    draws: Count
    profit_total_pct: Number | None
    profit_total_abs: Number | None
    max_drawdown_pct: Number | None
    max_drawdown_abs: Number | None
    win_rate: Number | None
    starting_balance: Number | None
    final_balance: Number | None
    pairs_total: Count
    pairs: Annotated[list[BacktestPairRow], Field(max_length=MAX_ROWS)]
    data: DataFingerprint


class ParameterFile(_Summary):
    """freqtrade's parameter file of the best epoch, as freqtrade wrote it next to the
    strategy (`<Strategy>.json`): placed there, freqtrade loads these parameters."""

    strategy_name: Text
    # space -> parameter -> value, the optimised ones and the strategy's others
    params: Annotated[
        dict[Text, Annotated[dict[Text, bool | ExactNumber | Text | None], Field(max_length=100)]],
        Field(max_length=12),
    ]
    ft_stratparam_v: Literal[1]
    export_time: Text


class HyperoptSummary(_Summary):
    kind: Literal["hyperopt"]
    strategy: Text
    hyperopt_loss: Text
    epochs: Count
    best_epoch: Count
    loss: Number | None
    trades: Count
    profit_total_pct: Number | None
    profit_total_abs: Number | None
    max_drawdown_pct: Number | None
    # space -> parameter -> value, e.g. {"buy": {"buy_rsi": 30}, "roi": {"0": 0.02}}
    params: Annotated[
        dict[Text, Annotated[dict[Text, ParamValue], Field(max_length=50)]],
        Field(max_length=12),
    ]
    data: DataFingerprint
    # The seed freqtrade used (the client's, or the one it drew) and its worker processes.
    random_state: Annotated[int, Field(ge=1, le=2**32 - 1)]
    job_workers: Annotated[int, Field(ge=1, le=1024)]
    # None when the file could not travel unchanged (the job's logs say why).
    parameter_file: ParameterFile | None


class DataSummary(_Summary):
    kind: Literal["download-data", "cache-fill"]
    exchange: Text
    timeframe: Text
    timerange: Text
    data: DataFingerprint


JobSummary = Annotated[BacktestSummary | HyperoptSummary | DataSummary, Field(discriminator="kind")]
_SUMMARY = TypeAdapter[BacktestSummary | HyperoptSummary | DataSummary](JobSummary)


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def parse_result_line(
    line: str | None, *, kind: str | None = None, max_bytes: int = MAX_RESULT_LINE_BYTES
) -> BacktestSummary | HyperoptSummary | DataSummary | None:
    """The summary in an `FTA-RESULT:` line, or None when the line is not a valid one.

    With `kind`, a summary of another kind of job is not valid either. `max_bytes` can only
    lower the cap of `MAX_RESULT_LINE_BYTES`.
    """
    if line is None:
        return None
    line = line.rstrip("\r\n")
    limit = min(max_bytes, MAX_RESULT_LINE_BYTES)
    if not line.startswith(RESULT_PREFIX) or len(line.encode()) > limit:
        return None
    try:
        data = json.loads(
            line[len(RESULT_PREFIX) :], parse_float=Decimal, parse_constant=_no_constants
        )
        summary = _SUMMARY.validate_python(data)
    except (ValueError, RecursionError, ValidationError):
        return None
    if kind is not None and summary.kind != kind:
        return None
    return summary
