"""Input that reaches freqtrade is matched whole and in ASCII: a trailing newline or a digit
of another script passed patterns anchored with `$` or written with `\\d`, and went on into
freqtrade's command line and configuration. Each such value is refused with 422 and nothing is
queued."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_api_jobs import CONFIG, _submit
from tests.support.api import Client, sign_up, upload_strategy

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    yield sign_up(http, "Anchoring")


@pytest.mark.parametrize(
    "change",
    [
        {"timerange": "20240101-20240201\n"},
        {"timerange": "20240101-20240201\n--datadir=/tmp"},
        {"timerange": "20240101-20240201".translate(ARABIC_INDIC)},
        {"timerange": "２０２４０１０１-２０２４０２０１"},  # fullwidth digits
        {"pairs": ["BTC/USDT\n"]},
        {"pairs": ["BTC/USDT\nETH/USDT"]},
        {"minimal_roi": {"10\n": 0.01}},
        {"minimal_roi": {"10".translate(ARABIC_INDIC): 0.01}},
        {"stake_currency": "USDT\n"},
    ],
    ids=repr,
)
def test_values_with_a_newline_or_foreign_digits_are_refused(
    http: TestClient, client: Client, change: dict[str, object]
) -> None:
    strategy_id = upload_strategy(client)
    response = _submit(
        http, client, kind="backtest", strategy_id=strategy_id, config={**CONFIG, **change}
    )
    assert response["status_code"] == 422, response
    assert http.get("/api/v1/jobs", headers=client.auth).json() == []


def test_a_month_with_a_trailing_newline_is_refused(http: TestClient, client: Client) -> None:
    assert http.get("/api/v1/usage?period=2026-11", headers=client.auth).status_code == 200
    response = http.get("/api/v1/usage", params={"period": "2026-11\n"}, headers=client.auth)
    assert response.status_code == 422
