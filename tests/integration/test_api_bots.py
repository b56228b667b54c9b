"""Bots through the REST API: lifecycle, quota, validation, isolation, logs (paged and
streamed), status and trades. No worker runs here: the worker's side is driven through the
bots service, as the worker does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from fta.accounts.models import Tenant, TenantStatus
from fta.accounts.service import Principal, authenticate
from fta.audit.models import AuditEvent
from fta.bots import api as bots_api
from fta.bots import service as bots
from fta.bots.models import ActualState, Bot, DesiredState
from fta.bots.snapshots import BotStatus, TradeSnapshot
from fta.db import session_scope
from fta.errors import Conflict
from tests.integration.strategies import source
from tests.support.api import Client, sign_up, upload_strategy

API = "/api/v1"
PROBLEM_JSON = "application/problem+json"
STRATEGY = source("Quick")
CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "5m",
    "stake_amount": 100,
    "max_open_trades": 2,
    "dry_run_wallet": 1000,
}


@pytest.fixture
def client(http: TestClient) -> Iterator[Client]:
    client = sign_up(http)  # the default plan: one running bot
    yield client
    # Leave no bot wanting to run for a worker that may run later in the session.
    for bot in http.get(f"{API}/bots", headers=client.auth).json():
        http.delete(f"{API}/bots/{bot['id']}", headers=client.auth)


def _create(http: TestClient, client: Client, name: str = "alpha", **body: Any) -> str:
    payload = {"name": name, "strategy_id": _strategy_id(http, client), "config": CONFIG, **body}
    response = http.post(f"{API}/bots", json=payload, headers=client.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _strategy_id(http: TestClient, client: Client) -> str:
    listed = http.get(f"{API}/strategies", headers=client.auth).json()
    return str(listed[0]["id"]) if listed else upload_strategy(client)


def _post(http: TestClient, client: Client, bot_id: str, action: str) -> Any:
    return http.post(f"{API}/bots/{bot_id}/{action}", headers=client.auth)


def _worker(bot_id: str, *states: ActualState, **fields: Any) -> None:
    """Moves the bot's actual state as the worker would."""
    with session_scope() as session:
        bot = bots.lock_bot(session, uuid.UUID(bot_id))
        assert bot is not None
        for state in states:
            bots.advance(bot, state, **fields)


def _append(bot_id: str, text: str) -> int:
    with session_scope() as session:
        return bots.append_log(session, uuid.UUID(bot_id), text)


def _principal(client: Client) -> Principal:
    with session_scope() as session:
        return authenticate(session, client.token)


def test_create_list_get_start_stop_restart_delete(http: TestClient, client: Client) -> None:
    bot_id = _create(http, client)
    bot = http.get(f"{API}/bots/{bot_id}", headers=client.auth).json()
    assert bot["name"] == "alpha" and bot["strategy_version_id"]
    assert (bot["desired_state"], bot["actual_state"]) == ("stopped", "stopped")
    assert bot["config"]["pairs"] == ["BTC/USDT", "ETH/USDT"]
    assert bot["config"]["stake_amount"] == "100" and "dry_run" not in bot["config"]
    assert bot["uptime_seconds"] is None and bot["restarts"] == 0
    assert [b["id"] for b in http.get(f"{API}/bots", headers=client.auth).json()] == [bot_id]

    started = _post(http, client, bot_id, "start")
    assert started.status_code == 202 and started.json()["desired_state"] == "running"
    assert _post(http, client, bot_id, "start").status_code == 202  # idempotent
    restarted = _post(http, client, bot_id, "restart")
    assert restarted.status_code == 202 and restarted.json()["restart_pending"] is True
    stopped = _post(http, client, bot_id, "stop")
    assert stopped.status_code == 202 and stopped.json()["desired_state"] == "stopped"
    assert stopped.json()["restart_pending"] is False
    # Restarting a stopped bot starts it.
    assert _post(http, client, bot_id, "restart").json()["desired_state"] == "running"

    deleted = http.delete(f"{API}/bots/{bot_id}", headers=client.auth)
    assert deleted.status_code == 204
    gone = http.get(f"{API}/bots/{bot_id}", headers=client.auth)
    assert gone.status_code == 404 and gone.headers["content-type"] == PROBLEM_JSON
    assert http.get(f"{API}/bots", headers=client.auth).json() == []
    with session_scope() as session:
        row = session.get(Bot, uuid.UUID(bot_id))
        assert row is not None and row.deleted_at is not None
        assert row.desired_state == DesiredState.STOPPED  # the worker removes its container
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.tenant_id == client.tenant_id, AuditEvent.target == bot_id)
            .order_by(AuditEvent.seq)
        ).all()
    assert actions == [
        "bot.create",
        "bot.start",
        "bot.restart",
        "bot.stop",
        "bot.restart",
        "bot.delete",
    ]
    # The name is free again once the bot is deleted.
    assert _create(http, client) != bot_id


def test_names_are_unique_among_live_bots(http: TestClient, client: Client) -> None:
    _create(http, client)
    again = http.post(
        f"{API}/bots",
        json={"name": "alpha", "strategy_id": _strategy_id(http, client), "config": CONFIG},
        headers=client.auth,
    )
    assert again.status_code == 409 and "already have a bot named 'alpha'" in again.json()["detail"]


def test_the_plan_limits_running_bots_at_start(http: TestClient, client: Client) -> None:
    first = _create(http, client, "first")
    second = _create(http, client, "second")
    assert _post(http, client, first, "start").status_code == 202
    for action in ("start", "restart"):
        refused = _post(http, client, second, action)
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == PROBLEM_JSON
        detail = refused.json()["detail"]
        assert "allows 1 running bot(s)" in detail and "running: first" in detail, detail
    assert http.get(f"{API}/bots/{second}", headers=client.auth).json()["desired_state"] == (
        "stopped"
    )
    # Stopping the first frees the slot, even before its container is gone.
    assert _post(http, client, first, "stop").status_code == 202
    assert _post(http, client, second, "start").status_code == 202
    # A deleted bot does not count either.
    assert http.delete(f"{API}/bots/{second}", headers=client.auth).status_code == 204
    assert _post(http, client, first, "start").status_code == 202


def test_a_suspended_account_cannot_start_a_bot(http: TestClient, client: Client) -> None:
    bot_id = _create(http, client)
    principal = _principal(client)
    with session_scope() as session:
        session.execute(
            update(Tenant)
            .where(Tenant.id == client.tenant_id)
            .values(status=TenantStatus.SUSPENDED)
        )
    try:
        for start in (bots.start_bot, bots.restart_bot):
            with session_scope() as session, pytest.raises(Conflict, match="suspended"):
                start(session, principal, client.tenant_id, uuid.UUID(bot_id), None)
        # Its client still signs in (to read why, pay, export): the API refuses the start.
        refused = _post(http, client, bot_id, "start")
        assert refused.status_code == 409 and "suspended" in refused.json()["detail"]
        with session_scope() as session:
            bot = session.get(Bot, uuid.UUID(bot_id))
            assert bot is not None and bot.desired_state == DesiredState.STOPPED
    finally:
        with session_scope() as session:
            session.execute(
                update(Tenant)
                .where(Tenant.id == client.tenant_id)
                .values(status=TenantStatus.ACTIVE)
            )


def test_the_worker_stops_the_bots_of_a_suspended_account(http: TestClient, client: Client) -> None:
    bot_id = _create(http, client)
    assert _post(http, client, bot_id, "start").status_code == 202
    _worker(bot_id, ActualState.STARTING, ActualState.RUNNING)
    with session_scope() as session:
        pending = {str(bot.id) for bot, _ in bots.bots_needing_action(session)}
        assert bot_id not in pending  # running as wanted
        session.execute(
            update(Tenant)
            .where(Tenant.id == client.tenant_id)
            .values(status=TenantStatus.SUSPENDED)
        )
        wanted = {
            str(bot.id): bots.wanted_state(bot, st) for bot, st in bots.bots_needing_action(session)
        }
        assert wanted[bot_id] is DesiredState.STOPPED
        session.rollback()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"exchange": "kraken"}, "exchange"),
        ({"pairs": ["NOPE/USDT"]}, "unknown pair(s) on binance: NOPE/USDT"),
        ({"pairs": ["../../etc"]}, "is not of the form BASE/QUOTE"),
        ({"pairs": ["BTC/USDT", "ETH/BTC"]}, "same quote currency"),
        ({"timeframe": "7m"}, "timeframe"),
        ({"stake_amount": 2000}, "stake_amount must not exceed dry_run_wallet"),
        ({"stake_amount": 0}, "stake_amount"),
        ({"dry_run_wallet": -5}, "dry_run_wallet"),
        ({"max_open_trades": 51}, "max_open_trades"),
        ({"max_open_trades": 0}, "max_open_trades"),
        ({"leverage": 10}, "unknown option 'leverage'; allowed: exchange, pairs, timeframe"),
        ({"exchange_key": "k"}, "unknown option 'exchange_key'"),
        ({"dry_run": False}, "bots always run in dry-run mode"),
        ({"dry_run": True}, "bots always run in dry-run mode"),
    ],
)
def test_bad_configs_are_refused_with_the_cause(
    http: TestClient, client: Client, change: dict[str, Any], expected: str
) -> None:
    response = http.post(
        f"{API}/bots",
        json={"name": "bad", "strategy_id": _strategy_id(http, client), "config": CONFIG | change},
        headers=client.auth,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    detail = response.json()["detail"]
    assert detail.startswith("invalid bot config") and expected in detail, detail
    assert http.get(f"{API}/bots", headers=client.auth).json() == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "<script>alert(1)</script>"},
        {"name": ""},
        {"name": "x" * 65},
        {"api_key": "secret"},  # pragma: allowlist secret
        {"config": "binance"},
        {"strategy_id": "not-a-uuid"},
    ],
    ids=["markup name", "empty name", "long name", "unknown field", "config type", "bad id"],
)
def test_bad_bodies_are_refused(http: TestClient, client: Client, body: dict[str, Any]) -> None:
    payload = {"name": "ok", "strategy_id": _strategy_id(http, client), "config": CONFIG} | body
    response = http.post(f"{API}/bots", json=payload, headers=client.auth)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON and response.json()["detail"]


def test_another_tenants_strategy_is_unknown(http: TestClient, client: Client) -> None:
    other = sign_up(http, "Other")
    foreign = upload_strategy(other)
    response = http.post(
        f"{API}/bots",
        json={"name": "mine", "strategy_id": foreign, "config": CONFIG},
        headers=client.auth,
    )
    assert response.status_code == 404 and foreign in response.json()["detail"]
    bot_id = _create(http, client)
    patched = http.patch(f"{API}/bots/{bot_id}", json={"strategy_id": foreign}, headers=client.auth)
    assert patched.status_code == 404


def test_update_pins_the_current_strategy_version(http: TestClient, client: Client) -> None:
    strategy_id = upload_strategy(client)
    bot_id = _create(http, client)
    pinned = http.get(f"{API}/bots/{bot_id}", headers=client.auth).json()["strategy_version_id"]
    newer = http.put(
        f"{API}/strategies/{strategy_id}",
        json={"source": STRATEGY + "\n# v2\n"},
        headers=client.auth,
    )
    assert newer.status_code == 200 and newer.json()["version"] == 2
    unchanged = http.get(f"{API}/bots/{bot_id}", headers=client.auth).json()
    assert unchanged["strategy_version_id"] == pinned
    patched = http.patch(
        f"{API}/bots/{bot_id}",
        json={"name": "beta", "strategy_id": strategy_id, "config": CONFIG | {"timeframe": "1h"}},
        headers=client.auth,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "beta" and body["config"]["timeframe"] == "1h"
    assert body["strategy_version_id"] != pinned
    assert http.patch(f"{API}/bots/{bot_id}", json={}, headers=client.auth).status_code == 422


def test_another_tenant_gets_404_on_every_route(http: TestClient, client: Client) -> None:
    intruder = sign_up(http, "Intruder")
    bot_id = _create(http, client)
    _append(bot_id, "secret strategy output\n")
    routes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "", None),
        ("PATCH", "", {"name": "stolen"}),
        ("POST", "/start", None),
        ("POST", "/stop", None),
        ("POST", "/restart", None),
        ("GET", "/logs", None),
        ("GET", "/logs?follow=true", None),
        ("GET", "/trades", None),
        ("DELETE", "", None),
    ]
    for method, suffix, body in routes:
        response = http.request(
            method, f"{API}/bots/{bot_id}{suffix}", json=body, headers=intruder.auth
        )
        assert response.status_code == 404, (method, suffix, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert "secret strategy output" not in response.text
    assert http.get(f"{API}/bots", headers=intruder.auth).json() == []
    mine = http.get(f"{API}/bots/{bot_id}", headers=client.auth).json()
    assert (mine["name"], mine["desired_state"]) == ("alpha", "stopped")


def test_logs_are_paged_and_redacted(http: TestClient, client: Client) -> None:
    bot_id = _create(http, client)
    for text in ("one\n", "two\n", "password=hunter2hunter2 three\n"):
        _append(bot_id, text)
    first = http.get(f"{API}/bots/{bot_id}/logs?limit=2", headers=client.auth).json()
    assert [c["text"] for c in first["chunks"]] == ["one\n", "two\n"]
    rest = http.get(
        f"{API}/bots/{bot_id}/logs?after={first['next_after']}", headers=client.auth
    ).json()
    assert [c["seq"] for c in rest["chunks"]] == [2]
    assert "hunter2" not in rest["chunks"][0]["text"] and "[REDACTED]" in rest["chunks"][0]["text"]
    empty = http.get(f"{API}/bots/{bot_id}/logs?after=2", headers=client.auth).json()
    assert empty == {"chunks": [], "next_after": 2}


def _events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-sent events of a stream, as {"id", "event", "data"}; comments skipped."""
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            event[field] = f"{event[field]}\n{value}" if field in event else value


def test_follow_streams_chunks_appended_while_connected(
    http: TestClient, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bots_api, "FOLLOW_MAX_SECONDS", 60.0)
    bot_id = _create(http, client)
    assert _post(http, client, bot_id, "start").status_code == 202
    _worker(bot_id, ActualState.STARTING, ActualState.RUNNING, container_id="c" * 64)
    _append(bot_id, "before\nthe stream\n")
    url = f"{API}/bots/{bot_id}/logs?follow=true"
    with http.stream("GET", url, headers=client.auth) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.iter_lines())
        assert next(events) == {"id": "0", "event": "log", "data": "before\nthe stream\n"}
        # Appended by the service while the client is connected: arrives on the stream.
        _append(bot_id, "after\n")
        assert next(events) == {"id": "1", "event": "log", "data": "after\n"}
        # The worker stops the bot: the stream ends by itself.
        assert _post(http, client, bot_id, "stop").status_code == 202
        _worker(bot_id, ActualState.STOPPING, ActualState.STOPPED)
        _append(bot_id, "last words\n")
        assert next(events) == {"id": "2", "event": "log", "data": "last words\n"}
        assert next(events) == {"event": "end", "data": "the bot is stopped"}
        assert next(events, None) is None


def test_follow_resumes_and_is_bounded_in_time(
    http: TestClient, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot_id = _create(http, client)
    assert _post(http, client, bot_id, "start").status_code == 202
    for text in ("a\n", "b\n", "c\n"):
        _append(bot_id, text)
    monkeypatch.setattr(bots_api, "FOLLOW_MAX_SECONDS", 0.0)
    headers = client.auth | {"Last-Event-ID": "1"}
    with http.stream("GET", f"{API}/bots/{bot_id}/logs?follow=true", headers=headers) as response:
        events = list(_events(response.iter_lines()))
    assert events == [
        {"id": "2", "event": "log", "data": "c\n"},
        {"event": "end", "data": "time limit reached: reconnect to continue"},
    ]


def test_status_and_trades_reported_by_the_worker(http: TestClient, client: Client) -> None:
    bot_id = _create(http, client)
    assert _post(http, client, bot_id, "start").status_code == 202
    _worker(bot_id, ActualState.STARTING, ActualState.RUNNING)
    opened = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    trades = [
        TradeSnapshot(
            trade_id=1,
            pair="BTC/USDT",
            is_open=False,
            open_date=opened,
            close_date=opened + timedelta(hours=1),
            amount=Decimal("0.0015"),
            stake_amount=Decimal("100"),
            open_rate=Decimal("66000.5"),
            close_rate=Decimal("66660"),
            profit_abs=Decimal("0.8"),
            profit_ratio=Decimal("0.008"),
        ),
        TradeSnapshot(
            trade_id=2,
            pair="ETH/USDT",
            is_open=True,
            open_date=opened + timedelta(hours=2),
            amount=Decimal("0.03"),
            stake_amount=Decimal("100"),
            open_rate=Decimal("3300"),
        ),
    ]
    with session_scope() as session:
        bots.record_status(
            session,
            uuid.UUID(bot_id),
            BotStatus(
                open_trades=1,
                closed_trades=1,
                closed_profit=Decimal("0.8"),
                balance=Decimal("1000.8"),
            ),
        )
        bots.record_trades(session, uuid.UUID(bot_id), trades)
    bot = http.get(f"{API}/bots/{bot_id}", headers=client.auth).json()
    assert (bot["actual_state"], bot["open_trades"], bot["closed_trades"]) == ("running", 1, 1)
    assert Decimal(bot["closed_profit"]) == Decimal("0.8")
    assert Decimal(bot["balance"]) == Decimal("1000.8")
    assert bot["uptime_seconds"] is not None and bot["uptime_seconds"] >= 0
    listed = http.get(f"{API}/bots/{bot_id}/trades", headers=client.auth).json()
    assert [t["trade_id"] for t in listed] == [2, 1]
    assert Decimal(listed[1]["open_rate"]) == Decimal("66000.5")
    assert listed[0]["close_date"] is None
    # A later report overwrites the trade: the open one closed.
    closed = trades[1].model_copy(
        update={
            "is_open": False,
            "close_date": opened + timedelta(hours=3),
            "close_rate": Decimal("3333"),
            "profit_abs": Decimal("1"),
        }
    )
    with session_scope() as session:
        bots.record_trades(session, uuid.UUID(bot_id), [closed])
    open_now = http.get(f"{API}/bots/{bot_id}/trades?is_open=true", headers=client.auth).json()
    assert open_now == []
    done = http.get(f"{API}/bots/{bot_id}/trades?is_open=false", headers=client.auth).json()
    assert sorted(t["trade_id"] for t in done) == [1, 2]


def test_a_crash_is_shown_and_backs_off(http: TestClient, client: Client) -> None:
    bot_id = _create(http, client)
    assert _post(http, client, bot_id, "start").status_code == 202
    _worker(bot_id, ActualState.STARTING, ActualState.RUNNING)
    now = datetime.now(UTC)
    with session_scope() as session:
        bot = bots.lock_bot(session, uuid.UUID(bot_id))
        assert bot is not None
        bots.record_crash(bot, "exit code 2: token=abcdefgh1234", "Traceback ...\n", now)
    crashed = http.get(f"{API}/bots/{bot_id}", headers=client.auth).json()
    assert crashed["actual_state"] == "crashed" and crashed["desired_state"] == "running"
    assert "abcdefgh1234" not in crashed["last_error"] and "exit code 2" in crashed["last_error"]
    assert crashed["last_log_lines"] == "Traceback ...\n"
    assert datetime.fromisoformat(crashed["restart_backoff_until"]) > now
    assert crashed["uptime_seconds"] is None
    _worker(bot_id, ActualState.STARTING)
    assert http.get(f"{API}/bots/{bot_id}", headers=client.auth).json()["restarts"] == 1
    # A restart by the client starts the count and the back-off again.
    assert _post(http, client, bot_id, "restart").json()["restarts"] == 0


def test_run_usage_only_grows_and_an_ended_run_is_final(http: TestClient, client: Client) -> None:
    bot_id = _create(http, client)
    _post(http, client, bot_id, "start")
    _worker(bot_id, ActualState.STARTING, ActualState.RUNNING)

    def sample(container: str, cpu: str, memory: int, *, ended: bool = False) -> None:
        with session_scope() as session:
            bot = bots.lock_bot(session, uuid.UUID(bot_id))
            assert bot is not None
            bots.record_run_usage(
                session, bot, container, cpu_seconds=Decimal(cpu), memory_max_bytes=memory,
                ended=ended,
            )  # fmt: skip

    sample("c1", "2.5", 100 << 20)
    sample("c1", "1.0", 50 << 20)  # a late or replayed sample lowers nothing
    sample("c1", "4.25", 80 << 20, ended=True)
    sample("c1", "99", 900 << 20)  # after the end: ignored
    sample("c2", "0.75", 120 << 20)
    with pytest.raises(ValueError, match="negative"):
        sample("c2", "-1", 0)
    with session_scope() as session:
        usage = bots.bot_usage(session, uuid.UUID(bot_id))
    assert usage.cpu_seconds == Decimal("5.000")
    assert usage.memory_max_bytes == 120 << 20
    shown = http.get(f"{API}/bots/{bot_id}", headers=client.auth).json()
    assert Decimal(shown["cpu_seconds"]) == Decimal("5.000")
    assert shown["running_seconds"] >= 0
