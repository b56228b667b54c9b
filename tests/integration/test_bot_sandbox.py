"""Dry-run bots end to end: the API, the worker's bot supervisor, the socket proxy, the
gateway's live replay (1m candles aligned to the clock) and real freqtrade in hardened
containers on the real Docker engine.

The tests of this module run in order on one bot, as its client would use it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container
from fastapi.testclient import TestClient
from sqlalchemy import update

from fta.accounts.models import Tenant, TenantStatus
from fta.bots.models import Bot
from fta.db import session_scope
from fta.runtime import DockerJobRunner
from fta.settings import get_settings
from tests.integration.strategies import source
from tests.support.api import Client, sign_up
from tests.support.sandbox import Sandbox
from tests.support.scoped_worker import ScopedBotSupervisor

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "1m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


@dataclass
class RunningBot:
    http: TestClient
    client: Client
    sandbox: Sandbox
    bot_id: str

    def get(self) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/bots/{self.bot_id}", headers=self.client.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def post(self, action: str) -> dict[str, Any]:
        response = self.http.post(f"/api/v1/bots/{self.bot_id}/{action}", headers=self.client.auth)
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
        return body

    def trades(self) -> list[dict[str, Any]]:
        response = self.http.get(f"/api/v1/bots/{self.bot_id}/trades", headers=self.client.auth)
        assert response.status_code == 200, response.text
        trades: list[dict[str, Any]] = response.json()
        return trades

    def logs(self) -> str:
        page = self.http.get(f"/api/v1/bots/{self.bot_id}/logs", headers=self.client.auth).json()
        return "".join(chunk["text"] for chunk in page.get("chunks", []))

    def wait(
        self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 240
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            bot = self.get()
            if check(bot):
                return bot
            if time.monotonic() > deadline:
                pytest.fail(f"bot never {what}: {bot}\nlogs:\n{self.logs()[-4000:]}")
            time.sleep(1)

    def containers(self) -> list[Container]:
        engine = docker.from_env()
        try:
            found = engine.containers.list(all=True, filters={"label": f"fta.bot={self.bot_id}"})
            return [c for c in found if c.labels.get("fta.bot") == self.bot_id]
        finally:
            engine.close()


def _is_running(bot: dict[str, Any]) -> bool:
    return bool(bot["actual_state"] == "running" and bot["freqtrade_state"] == "RUNNING")


def _create(http: TestClient, client: Client, name: str, strategy: str) -> str:
    uploaded = http.post(
        "/api/v1/strategies", json={"name": strategy, "source": source(strategy)},
        headers=client.auth,
    )  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    body = {"name": name, "strategy_id": uploaded.json()["id"], "config": BOT_CONFIG}
    created = http.post("/api/v1/bots", json=body, headers=client.auth)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.fixture(scope="module")
def bot(http: TestClient, sandbox: Sandbox) -> Iterator[RunningBot]:
    client = sign_up(http, "Trader")
    sandbox.forget_tenant(client.tenant_id)
    running = RunningBot(http, client, sandbox, _create(http, client, "enter-now", "EnterNow"))
    try:
        yield running
    finally:
        http.delete(f"/api/v1/bots/{running.bot_id}", headers=client.auth)


def test_a_started_bot_runs_hardened_and_opens_a_dry_run_trade(bot: RunningBot) -> None:
    assert bot.post("start")["desired_state"] == "running"
    state = bot.wait("reached running", _is_running)
    assert state["whitelist"] == ["BTC/USDT"]
    assert state["last_heartbeat_at"] is not None
    state = bot.wait("opened a trade", lambda b: (b["open_trades"] or 0) >= 1)
    assert state["balance"] is not None
    (trade,) = [t for t in bot.trades() if t["is_open"]]
    assert trade["pair"] == "BTC/USDT" and float(trade["stake_amount"]) > 0

    (container,) = bot.containers()
    host = container.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"] and host["PidsLimit"] == 256
    assert host["NetworkMode"] == f"fta-client-{bot.client.tenant_id}"
    assert container.attrs["Config"]["User"] == "10000:10000"
    assert "Dry run is enabled" in bot.logs()


def test_stop_then_start_keeps_the_trade_history(bot: RunningBot) -> None:
    before = {t["trade_id"] for t in bot.trades()}
    assert before
    bot.post("stop")
    stopped = bot.wait("stopped", lambda b: b["actual_state"] == "stopped", timeout=90)
    assert bot.containers() == []
    # The run was metered: freqtrade's start-up alone takes seconds of CPU.
    assert float(stopped["cpu_seconds"]) > 1 and stopped["running_seconds"] > 1, stopped
    bot.post("start")
    state = bot.wait("ran again", lambda b: _is_running(b) and b["status_at"] is not None)
    # The trade database lives in the tenant's volume: the new container reports it.
    bot.wait("reported its trades again", lambda b: (b["open_trades"] or 0) >= 1)
    assert before <= {t["trade_id"] for t in bot.trades()}
    assert state["restarts"] == 0


def test_a_bot_killed_from_outside_restarts_and_counts_it(bot: RunningBot) -> None:
    (container,) = bot.containers()
    container.kill()
    bot.wait("restarted", lambda b: b["restarts"] == 1 and _is_running(b), timeout=240)
    (again,) = bot.containers()
    assert again.id != container.id


def test_a_restarted_worker_takes_the_bot_over_without_a_duplicate(bot: RunningBot) -> None:
    (container,) = bot.containers()
    # A new supervisor knows nothing but Postgres and the engine's labels, like a worker
    # process that just started.
    settings = get_settings()
    runner = DockerJobRunner(settings, extra_labels=bot.sandbox.labels)
    try:
        fresh = ScopedBotSupervisor(runner, settings, bot.sandbox.tenants)
        fresh.converge()
        fresh.converge()
    finally:
        runner.close()
    assert [c.id for c in bot.containers()] == [container.id]
    assert bot.get()["actual_state"] == "running"


def test_a_container_removed_behind_the_platforms_back_comes_back(bot: RunningBot) -> None:
    (container,) = bot.containers()
    restarts = bot.get()["restarts"]
    container.remove(force=True)
    bot.wait(
        "came back",
        lambda b: b["restarts"] == restarts + 1 and _is_running(b),
        timeout=240,
    )
    (again,) = bot.containers()
    assert again.id != container.id


def test_a_suspended_account_has_its_bot_stopped_until_reactivated(bot: RunningBot) -> None:
    set_status(bot.client.tenant_id, TenantStatus.SUSPENDED)
    try:
        # A suspended account's tokens are refused: the database tells what the worker did.
        deadline = time.monotonic() + 90
        while stored(bot).actual_state != "stopped" and time.monotonic() < deadline:
            time.sleep(1)
        assert stored(bot).actual_state == "stopped"
        assert bot.containers() == []
        assert stored(bot).desired_state == "running"  # what the client asked for stays
    finally:
        set_status(bot.client.tenant_id, TenantStatus.ACTIVE)
    bot.wait("ran again", _is_running)


def stored(bot: RunningBot) -> Bot:
    with session_scope() as session:
        row = session.get(Bot, uuid.UUID(bot.bot_id))
        assert row is not None
        session.expunge(row)
        return row


def set_status(tenant_id: str, status: TenantStatus) -> None:
    with session_scope() as session:
        session.execute(update(Tenant).where(Tenant.id == tenant_id).values(status=status))


def test_a_strategy_that_crashes_at_start_ends_crashed_with_its_cause(
    http: TestClient, sandbox: Sandbox, bot: RunningBot
) -> None:
    other = sign_up(http, "Unlucky")
    sandbox.forget_tenant(other.tenant_id)
    broken = RunningBot(http, other, sandbox, _create(http, other, "broken", "BrokenImport"))
    broken.post("start")
    state = broken.wait("crashed", lambda b: b["actual_state"] == "crashed", timeout=180)
    assert "BrokenImport" in state["last_error"], state
    assert state["last_log_lines"]
    assert state["restart_backoff_until"] is not None
    # The first tenant's bot never noticed.
    assert _is_running(bot.get())
    http.delete(f"/api/v1/bots/{broken.bot_id}", headers=other.auth)
    # Deleted: no container left once the worker has converged.
    deadline = time.monotonic() + 60
    while broken.containers() and time.monotonic() < deadline:
        time.sleep(1)
    assert broken.containers() == []


def test_a_deleted_bot_leaves_no_container_and_keeps_its_data(bot: RunningBot) -> None:
    response = bot.http.delete(f"/api/v1/bots/{bot.bot_id}", headers=bot.client.auth)
    assert response.status_code == 204, response.text
    deadline = time.monotonic() + 90
    while bot.containers() and time.monotonic() < deadline:
        time.sleep(1)
    assert bot.containers() == []
    disk = Path(get_settings().tenant_disk_root, "mounts", bot.client.tenant_id, "bots")
    databases = list(disk.glob("*/tradesv3.dryrun.sqlite"))
    assert len(databases) == 1 and databases[0].stat().st_size > 0
