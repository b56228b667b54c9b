"""The rules of a bot's relayed websocket: which requests reach the bot, in what shape, how
often, and how the bot's messages come back."""

from __future__ import annotations

import json

import pytest

from fta.freqtrade import bot_ws
from fta.freqtrade.bot_ws import Refused, RequestBudget, bot_message, client_request


@pytest.mark.parametrize(
    ("sent", "passed"),
    [
        (
            '{"type": "subscribe", "data": ["whitelist", "entry_fill"]}',
            {"type": "subscribe", "data": ["whitelist", "entry_fill"]},
        ),
        ('{"type": "whitelist"}', {"type": "whitelist"}),
        ('{"type": "whitelist", "data": null}', {"type": "whitelist"}),
        ('{"type": "analyzed_df"}', {"type": "analyzed_df", "data": {"limit": 1500, "pair": None}}),
        (
            '{"type": "analyzed_df", "data": {"limit": 50, "pair": "BTC/USDT"}}',
            {"type": "analyzed_df", "data": {"limit": 50, "pair": "BTC/USDT"}},
        ),
    ],
)
def test_freqtrades_requests_pass_re_encoded(sent: str, passed: dict[str, object]) -> None:
    assert json.loads(client_request(sent)) == passed


@pytest.mark.parametrize(
    "sent",
    [
        "not json",
        "[]",
        '{"type": "status"}',
        '{"type": "whitelist", "data": {"x": 1}}',
        '{"type": "subscribe", "data": "whitelist"}',
        '{"type": "subscribe", "data": ["<script>"]}',
        '{"type": "analyzed_df", "data": {"limit": 100000}}',
        '{"type": "analyzed_df", "data": {"limit": true}}',
        '{"type": "analyzed_df", "data": {"limit": 10, "pair": "../etc"}}',
        '{"type": "analyzed_df", "data": {"limit": 10, "exec": "x"}}',
        '{"type": "whitelist", "extra": 1}',
    ],
)
def test_anything_else_closes_the_socket_as_a_policy_violation(sent: str) -> None:
    with pytest.raises(Refused) as refused:
        client_request(sent)
    assert refused.value.code == bot_ws.POLICY_VIOLATION


def test_a_large_request_is_refused_as_too_big() -> None:
    big = json.dumps({"type": "subscribe", "data": ["whitelist"] * 1000})
    with pytest.raises(Refused) as refused:
        client_request(big)
    assert refused.value.code == bot_ws.TOO_BIG


def test_the_bots_messages_come_back_as_json_that_reads_as_no_markup() -> None:
    sent = '{"type": "strategy_msg", "data": "<img src=x onerror=alert(1)> & more"}'
    passed = bot_message(sent)
    assert "<" not in passed and ">" not in passed and "&" not in passed
    assert json.loads(passed) == json.loads(sent)


@pytest.mark.parametrize("sent", ["not json", "[1, 2]", '{"type": "x", "data": NaN}'])
def test_a_bot_sending_anything_else_is_cut_off(sent: str) -> None:
    with pytest.raises(Refused) as refused:
        bot_message(sent)
    assert refused.value.code == bot_ws.UNAVAILABLE


def test_a_message_past_the_limit_is_cut_off_as_too_big() -> None:
    sent = json.dumps({"type": "analyzed_df", "data": "x" * bot_ws.MAX_BOT_MESSAGE_BYTES})
    with pytest.raises(Refused) as refused:
        bot_message(sent)
    assert refused.value.code == bot_ws.TOO_BIG


def test_requests_beyond_the_burst_wait_for_the_refill() -> None:
    budget = RequestBudget(now=100.0)
    for _ in range(bot_ws.CLIENT_BURST):
        budget.spend(100.0)
    with pytest.raises(Refused):
        budget.spend(100.0)
    budget.spend(100.0 + bot_ws.REFILL_SECONDS)
    with pytest.raises(Refused):
        budget.spend(100.0 + bot_ws.REFILL_SECONDS)
