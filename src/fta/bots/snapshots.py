"""What a bot's container reports about itself: strict schemas with bounds.

The container runs tenant code, so these reports are untrusted: the worker validates them
here before `service.record_status` / `service.record_trades` store them. A tenant can
fake its own figures, and only its own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from fta.freqtrade.markers import STATUS_PREFIX

Money = Annotated[Decimal, Field(ge=-(10**15), le=10**15, decimal_places=12)]
Positive = Annotated[Decimal, Field(ge=0, le=10**15, decimal_places=12)]
MAX_TRADES_PER_REPORT = 500


class BotStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    open_trades: Annotated[int, Field(ge=0, le=1000)]
    closed_trades: Annotated[int, Field(ge=0, le=10**9)]
    closed_profit: Money
    balance: Money


class TradeSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trade_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    pair: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")]
    is_open: bool
    open_date: AwareDatetime
    close_date: AwareDatetime | None = None
    amount: Positive
    stake_amount: Positive
    open_rate: Positive
    close_rate: Positive | None = None
    profit_abs: Money | None = None
    profit_ratio: Annotated[Decimal, Field(ge=-(10**6), le=10**6, decimal_places=10)] | None = None

    @model_validator(mode="after")
    def _dates(self) -> TradeSnapshot:
        if self.is_open and self.close_date is not None:
            raise ValueError("an open trade has no close_date")
        if self.close_date is not None and self.close_date < self.open_date:
            raise ValueError("close_date is before open_date")
        return self


MAX_REPORT_BYTES = 256 * 1024
Pair = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")]


class FreqtradeHealth(BaseModel):
    """What freqtrade itself logged, as the bot's entry saw it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    heartbeat_at: AwareDatetime | None
    state: Annotated[str, Field(pattern=r"^[A-Z_]{1,20}$")] | None
    whitelist: Annotated[list[Pair], Field(max_length=50)]


class BotReport(BaseModel):
    """One `FTA-STATUS:` line of a bot's container."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: BotStatus | None = None
    trades: Annotated[list[TradeSnapshot], Field(max_length=MAX_TRADES_PER_REPORT)] = []
    error: Annotated[str, Field(max_length=500)] | None = None
    freqtrade: FreqtradeHealth


def parse_report_line(line: str) -> BotReport | None:
    """The report on a status line, or None for any other line or a malformed report."""
    if not line.startswith(STATUS_PREFIX) or len(line) > MAX_REPORT_BYTES:
        return None
    try:
        return BotReport.model_validate_json(line.removeprefix(STATUS_PREFIX))
    except ValueError:
        return None
