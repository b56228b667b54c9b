"""What a bot's container reports about itself: strict schemas with bounds.

The container runs tenant code, so these reports are untrusted: the worker validates them
here before `service.record_status` / `service.record_trades` store them. A tenant can
fake its own figures, and only its own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

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


class TradeReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trades: Annotated[list[TradeSnapshot], Field(max_length=MAX_TRADES_PER_REPORT)]
