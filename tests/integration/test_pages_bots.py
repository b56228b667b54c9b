"""The bots pages over HTTP, without a worker: the list, the form (errors in French, nothing
typed lost), the detail page with its trades, profit in EUR at a stored rate, the actions and
their refusals. The worker's side is played through the bots service, as the worker does."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from fta.bots import service as bots
from fta.bots.eur_rates import EurRate
from fta.bots.models import ActualState, Bot
from fta.bots.snapshots import BotStatus, TradeSnapshot
from fta.db import session_scope
from tests.support.api import Client, sign_up, upload_strategy

FORM = {
    "name": "rsi-eth",
    "stake_currency": "USDT",
    "pairs": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "5m",
    "stake_amount": "50",
    "max_open_trades": "2",
    "dry_run_wallet": "1 000,50",
}


class Browser:
    """A signed-in browser: its cookies (over https, as the Secure cookies need) and the
    CSRF token of its forms."""

    def __init__(self, http: TestClient, client: Client) -> None:
        self.web = TestClient(http.app, base_url="https://testserver", follow_redirects=False)
        self.client = client
        page = self.web.get("/login")
        answer = self.web.post(
            "/login",
            data={"csrf_token": self.token(page.text), "email": client.email,
                  "password": client.password},
        )  # fmt: skip
        assert answer.status_code == 303, answer.text

    @staticmethod
    def token(page: str) -> str:
        found = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page)
        assert found, "the page carries no form token"
        return found[1]

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.web.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any], *, from_page: str | None = None) -> Any:
        page = self.web.get(from_page or path)
        return self.web.post(path, data={"csrf_token": self.token(page.text), **data})


@pytest.fixture
def browser(http: TestClient) -> Iterator[Browser]:
    client = sign_up(http, "Pages")
    upload_strategy(client)
    yield Browser(http, client)
    for bot in http.get("/api/v1/bots", headers=client.auth).json():
        http.delete(f"/api/v1/bots/{bot['id']}", headers=client.auth)


@pytest.fixture
def eur_rate() -> Iterator[EurRate]:
    rate = EurRate(
        currency="USDT",
        eur_per_unit=Decimal("0.8"),
        source="binance EUR/USDT",
        quoted_at=datetime(2026, 12, 6, 13, 5, tzinfo=UTC),
    )
    with session_scope() as session:
        session.merge(rate)
    yield rate
    with session_scope() as session:
        session.execute(delete(EurRate).where(EurRate.currency == "USDT"))


def _strategy_id(browser: Browser) -> str:
    listed = browser.client.http.get("/api/v1/strategies", headers=browser.client.auth).json()
    return str(listed[0]["id"])


def _create(browser: Browser, **change: Any) -> str:
    answer = browser.post("/app/bots/new", {**FORM, "strategy_id": _strategy_id(browser), **change})
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/app/bots/([0-9a-f-]{36})", answer.headers["location"])
    assert found, answer.headers["location"]
    return found[1]


def _text(page: str) -> str:
    """The page's text, tags removed, entities and spaces as a reader sees them."""
    body = re.sub(r"<script\b.*?</script>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body))).replace("\u202f", " ")


def test_a_bot_made_with_the_form_is_listed_and_shown(browser: Browser) -> None:
    empty = browser.get("/app/bots")
    assert empty.status_code == 200 and "Aucun bot pour l'instant" in _text(empty.text)
    form = browser.get("/app/bots/new")
    assert form.status_code == 200
    assert 'value="BTC/USDT"' in form.text and 'value="ETH/BTC"' in form.text

    bot_id = _create(browser)
    with session_scope() as session:
        bot = session.get(Bot, uuid.UUID(bot_id))
        assert bot is not None and bot.tenant_id == browser.client.tenant_id
        assert bot.config["pairs"] == ["BTC/USDT", "ETH/USDT"]
        # Typed the French way: "1 000,50".
        assert Decimal(bot.config["dry_run_wallet"]) == Decimal("1000.50")
        assert bot.config["max_open_trades"] == 2 and bot.desired_state == "stopped"

    listing = _text(browser.get("/app/bots").text)
    assert "rsi-eth" in listing and "Quick v1" in listing and "Arrêté" in listing
    detail = browser.get(f"/app/bots/{bot_id}")
    assert detail.status_code == 200
    text = _text(detail.text)
    assert "Aucun trade ouvert." in text and "Aucun trade clôturé" in text
    assert "BTC/USDT, ETH/USDT · 5m" in text
    # Without a rate, no euro amount: the page says why.
    assert "données de marché synthétiques" in text


def test_mistakes_are_explained_in_french_and_nothing_typed_is_lost(browser: Browser) -> None:
    typed = {
        **FORM,
        "name": "bad name!",
        "strategy_id": _strategy_id(browser),
        "pairs": ["BTC/USDT", "ETH/BTC"],
        "stake_amount": "douze",
        "max_open_trades": "2,5",
        "dry_run_wallet": "500",
    }
    answer = browser.post("/app/bots/new", typed)
    assert answer.status_code == 400
    page = answer.text
    text = _text(page)
    assert "1 à 64 caractères" in text
    assert "Saisissez un nombre" in text
    assert "Saisissez un nombre entier de 1 à 50." in text
    # Everything typed comes back, as typed.
    assert 'value="bad name!"' in page and 'value="douze"' in page and 'value="2,5"' in page
    assert re.search(r'value="ETH/BTC"\s+checked', page)
    assert re.search(r'value="BTC/USDT"\s+checked', page)

    mixed = browser.post(
        "/app/bots/new", {**typed, "name": "ok", "stake_amount": "10", "max_open_trades": "2"}
    )
    assert mixed.status_code == 400
    assert "même devise de cotation" in _text(mixed.text)
    too_much = browser.post(
        "/app/bots/new",
        {**typed, "name": "ok", "pairs": ["BTC/USDT"], "stake_amount": "600",
         "max_open_trades": "2"},
    )  # fmt: skip
    assert too_much.status_code == 400
    assert "ne peut pas dépasser le portefeuille de départ" in _text(too_much.text)
    assert browser.client.http.get("/api/v1/bots", headers=browser.client.auth).json() == []

    bot_id = _create(browser)
    taken = browser.post("/app/bots/new", {**FORM, "strategy_id": _strategy_id(browser)})
    assert taken.status_code == 400
    assert "Vous avez déjà un bot de ce nom" in _text(taken.text)
    english = browser.web.post(
        f"/app/bots/{bot_id}/edit",
        data={"csrf_token": browser.token(browser.get(f"/app/bots/{bot_id}/edit").text),
              **FORM, "strategy_id": _strategy_id(browser), "pairs": []},
        cookies={"fta_lang": "en"},
    )  # fmt: skip
    assert english.status_code == 400 and "Choose at least one pair." in english.text


def test_the_edit_form_keeps_the_strategy_version_unless_asked(browser: Browser) -> None:
    bot_id = _create(browser)
    client = browser.client
    strategy_id = _strategy_id(browser)
    newer = client.http.put(
        f"/api/v1/strategies/{strategy_id}", json={"source": _quick_v2()}, headers=client.auth
    )
    assert newer.status_code == 200, newer.text
    form = browser.get(f"/app/bots/{bot_id}/edit")
    assert form.status_code == 200
    text = _text(form.text)
    assert "Le bot exécute la version 1 de Quick" in text
    # The form shows the stored config as a French reader types it.
    assert 'value="1000,5"' in form.text and 'value="rsi-eth"' in form.text

    kept = browser.post(
        f"/app/bots/{bot_id}/edit",
        {**FORM, "name": "renamed", "strategy_id": strategy_id, "timeframe": "1h"},
    )
    assert kept.status_code == 303, kept.text
    detail = _text(browser.get(f"/app/bots/{bot_id}").text)
    assert "renamed" in detail and "Quick v1" in detail and "· 1h ·" in detail
    moved = browser.post(
        f"/app/bots/{bot_id}/edit",
        {**FORM, "name": "renamed", "strategy_id": strategy_id, "pin_latest": "true"},
    )
    assert moved.status_code == 303
    assert "Quick v2" in _text(browser.get(f"/app/bots/{bot_id}").text)


def _quick_v2() -> str:
    from tests.integration.strategies import source

    return source("Quick") + "\n# second version\n"


def test_trades_profit_in_euros_and_chart_data(browser: Browser, eur_rate: EurRate) -> None:
    bot_id = _create(browser)
    opened = datetime(2026, 12, 5, 22, 30, tzinfo=UTC)
    trades = [
        TradeSnapshot(
            trade_id=1, pair="BTC/USDT", is_open=False, open_date=opened,
            close_date=opened + timedelta(hours=2), amount=Decimal("0.001"),
            stake_amount=Decimal("50"), open_rate=Decimal("42000"),
            close_rate=Decimal("43000"), profit_abs=Decimal("1.19"),
            profit_ratio=Decimal("0.0238"),
        ),
        TradeSnapshot(
            trade_id=2, pair="ETH/USDT", is_open=False, open_date=opened + timedelta(hours=3),
            close_date=opened + timedelta(hours=4), amount=Decimal("0.02"),
            stake_amount=Decimal("50"), open_rate=Decimal("2300"), close_rate=Decimal("2290"),
            profit_abs=Decimal("-0.25"), profit_ratio=Decimal("-0.005"),
        ),
        TradeSnapshot(
            trade_id=3, pair="ETH/USDT", is_open=True, open_date=opened + timedelta(hours=5),
            amount=Decimal("0.02"), stake_amount=Decimal("50"), open_rate=Decimal("2310.5"),
        ),
    ]  # fmt: skip
    with session_scope() as session:
        bots.record_trades(session, uuid.UUID(bot_id), trades)
        bots.record_status(
            session,
            uuid.UUID(bot_id),
            BotStatus(open_trades=1, closed_trades=2, closed_profit=Decimal("0.94"),
                      balance=Decimal("1001.44")),
            freqtrade_state="RUNNING",
        )  # fmt: skip
    page = browser.get(f"/app/bots/{bot_id}").text
    text = _text(page)
    # 0.94 USDT at 0.8 EUR: 0.752 EUR, rounded to the cent; the rate and its time are told.
    assert "0,94 USDT ≈ 0,75 €" in text
    assert "≈ 0,75 € au taux du 06/12/2026 14:05" in text
    assert "1 USDT = 0,80 € (binance EUR/USDT)" in text
    # Paris time: 22:30 UTC on 5 December is 23:30 in Paris.
    assert "05/12/2026 23:30" in text and "06/12/2026 01:30" in text
    assert "1,19 USDT ≈ 0,95 €" in text and "-0,25 USDT ≈ -0,20 €" in text
    assert "2,38 %" in text and "-0,50 %" in text
    assert "2 310,50" in text  # the open trade's rate
    data = re.search(r'<script type="application/json" id="profit-data">(.*?)</script>', page)
    assert data is not None
    chart = json.loads(data[1])
    times = [int((opened + timedelta(hours=h)).timestamp() * 1000) for h in (0, 2, 4)]
    assert chart["points"] == [[times[0], "0"], [times[1], "1.19"], [times[2], "0.94"]]
    assert chart["currency"] == "USDT" and chart["label"] == "Profit réalisé cumulé (USDT)"
    listing = _text(browser.get("/app/bots").text)
    assert "0,94 USDT ≈ 0,75 €" in listing


def test_start_stop_and_their_refusals_in_french(browser: Browser) -> None:
    first = _create(browser)
    second = _create(browser, name="second")
    started = browser.post(f"/app/bots/{first}/start", {}, from_page=f"/app/bots/{first}")
    assert started.status_code == 303 and started.headers["location"] == f"/app/bots/{first}"
    page = _text(browser.get(f"/app/bots/{first}").text)
    assert "Arrêté doit tourner" in page
    state = browser.get(f"/app/bots/{first}/state").json()
    assert state == {"seen": "stopped|running|False", "busy": True}

    # The default plan runs one bot: the refusal names the running one, in French.
    refused = browser.post(f"/app/bots/{second}/start", {}, from_page=f"/app/bots/{second}")
    assert refused.status_code == 429
    assert "Votre offre fait tourner 1 bot à la fois (en marche : rsi-eth)" in _text(refused.text)

    with session_scope() as session:
        bot = bots.lock_bot(session, uuid.UUID(first))
        assert bot is not None
        bots.advance(bot, ActualState.STARTING)
        bots.advance(bot, ActualState.RUNNING)
    running = _text(browser.get(f"/app/bots/{first}").text)
    assert "En marche" in running and "Arrêter" in running
    stopped = browser.post(f"/app/bots/{first}/stop", {}, from_page=f"/app/bots/{first}")
    assert stopped.status_code == 303
    with session_scope() as session:
        bot = session.get(Bot, uuid.UUID(first))
        assert bot is not None and bot.desired_state == "stopped"

    deleted = browser.post(f"/app/bots/{second}/delete", {}, from_page=f"/app/bots/{second}")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/app/bots"
    assert browser.get(f"/app/bots/{second}").status_code == 404


def test_a_crash_shows_its_cause_and_last_lines(browser: Browser) -> None:
    bot_id = _create(browser)
    browser.post(f"/app/bots/{bot_id}/start", {}, from_page=f"/app/bots/{bot_id}")
    with session_scope() as session:
        bot = bots.lock_bot(session, uuid.UUID(bot_id))
        assert bot is not None
        bots.advance(bot, ActualState.STARTING)
        bots.record_crash(
            bot, "freqtrade exited with code 2", "Traceback\nValueError: <b>bad</b>\n",
            datetime.now(UTC),
        )  # fmt: skip
        bots.append_log(session, uuid.UUID(bot_id), "2026-12-06 starting <script>x</script>\n")
    page = browser.get(f"/app/bots/{bot_id}").text
    text = _text(page)
    assert "Planté" in text and "Dernière erreur : freqtrade exited with code 2" in text
    assert "Redémarrage automatique après" in text
    assert "&lt;b&gt;bad&lt;/b&gt;" in page and "<b>bad" not in page
    assert "starting &lt;script&gt;x&lt;/script&gt;" in page
    assert re.search(r'data-after="0"', page)
