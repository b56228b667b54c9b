"""What the bots pages compute for display: the profit curve, durations and amounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fta.bots.models import BotTrade
from fta.portal.views.bots import Amounts, _chart, _duration
from fta.web.i18n import Formats

START = datetime(2026, 12, 1, tzinfo=UTC)


def _closed(trade_id: int, hours: int, profit: str) -> BotTrade:
    return BotTrade(
        trade_id=trade_id,
        pair="BTC/USDT",
        is_open=False,
        open_date=START + timedelta(hours=hours - 1),
        close_date=START + timedelta(hours=hours),
        profit_abs=Decimal(profit),
    )


def _ms(hours: int) -> int:
    return int((START + timedelta(hours=hours)).timestamp() * 1000)


def test_the_curve_starts_at_zero_and_adds_each_closed_trade_in_closing_order() -> None:
    trades = [_closed(2, 5, "-0.5"), _closed(1, 2, "1.25")]
    assert _chart(trades, Decimal("0.75"), 2) == [
        (_ms(1), "0"),
        (_ms(2), "1.25"),
        (_ms(5), "0.75"),
    ]
    assert _chart([], Decimal(0), 0) == []


def test_with_older_trades_not_shown_the_curve_ends_at_the_bots_closed_profit() -> None:
    # 10 trades closed, the 2 shown made 0.75 of the 10.75 in all.
    trades = [_closed(9, 5, "-0.5"), _closed(10, 7, "1.25")]
    points = _chart(trades, Decimal("10.75"), 10)
    assert points[0] == (_ms(4), "10")
    assert points[-1] == (_ms(7), "10.75")


def test_durations_and_amounts_as_a_french_reader_writes_them() -> None:
    def _(text: str) -> str:
        return {"%(d)dd %(h)dh": "%(d)d j %(h)d h", "%(h)dh %(m)02dm": "%(h)d h %(m)02d"}.get(
            text, text
        )

    assert _duration(None, _) == "—"
    assert _duration(42, _) == "42s"
    assert _duration(3 * 86_400 + 5 * 3600 + 59, _) == "3 j 5 h"
    assert _duration(2 * 3600 + 7 * 60, _) == "2 h 07"
    french = Amounts(Formats("fr"))
    assert french.stake(Decimal("1234.5"), "USDT") == "1\u202f234,50\u00a0USDT"
    assert french.stake(Decimal("0.00012345"), "BTC") == "0,00012345\u00a0BTC"
    assert french.quantity(Decimal("0.043000000000")) == "0,043"
    assert french.price(Decimal("42123.456")) == "42\u202f123,46"
    assert french.price(Decimal("0.6")) == "0,600000"
    assert french.eur_rate(Decimal("0.925925925925925926")) == "0,925926\u00a0€"
    assert french.eur_rate(Decimal("80000.000000000000000000")) == "80\u202f000,00\u00a0€"
