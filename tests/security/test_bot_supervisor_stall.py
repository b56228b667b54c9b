"""A bot deaf to SIGTERM does not stall the bot supervisor: while its stop waits out the grace
period (10 s in the sandbox), another tenant's bot starts at the next round, and the deaf
bot's own row stays free for its client's requests.

Runs through the real portal API, the sandbox's worker (rounds every second), the socket
proxy and real freqtrade containers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import pytest
from fastapi.testclient import TestClient

from tests.integration.strategies import source as ordinary_source
from tests.security.strategies import source as hostile_source
from tests.support.api import Client, sign_up
from tests.support.sandbox import Sandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "1m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}
# A round every second: a start waits one round and a container's creation, never a stop.
PROMPT_START_SECONDS = 6


class Bots:
    def __init__(self, http: TestClient, sandbox: Sandbox) -> None:
        self.http = http
        self.sandbox = sandbox
        self.made: list[tuple[Client, str]] = []

    def create(self, client: Client, strategy: str, strategy_source: str) -> str:
        uploaded = self.http.post(
            "/api/v1/strategies",
            json={"name": strategy, "source": strategy_source},
            headers=client.auth,
        )
        assert uploaded.status_code == 201, uploaded.text
        body = {
            "name": strategy.lower(),
            "strategy_id": uploaded.json()["id"],
            "config": BOT_CONFIG,
        }
        created = self.http.post("/api/v1/bots", json=body, headers=client.auth)
        assert created.status_code == 201, created.text
        bot_id = str(created.json()["id"])
        self.made.append((client, bot_id))
        return bot_id

    def post(self, client: Client, bot_id: str, action: str) -> None:
        response = self.http.post(f"/api/v1/bots/{bot_id}/{action}", headers=client.auth)
        assert response.status_code == 202, response.text

    def get(self, client: Client, bot_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/v1/bots/{bot_id}", headers=client.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait(
        self, client: Client, bot_id: str, check: Callable[[dict[str, Any]], bool], timeout: float
    ) -> float:
        """Seconds until `check` holds for the bot."""
        start = time.monotonic()
        while not check(bot := self.get(client, bot_id)):
            if time.monotonic() - start > timeout:
                pytest.fail(f"bot {bot_id} is still {bot} after {timeout} s")
            time.sleep(0.2)
        return time.monotonic() - start


@pytest.fixture
def bots(http: TestClient, sandbox: Sandbox) -> Iterator[Bots]:
    made = Bots(http, sandbox)
    yield made
    for client, bot_id in made.made:
        http.delete(f"/api/v1/bots/{bot_id}", headers=client.auth)
    for client, bot_id in made.made:
        deadline = time.monotonic() + 60
        while (
            http.get(f"/api/v1/bots/{bot_id}", headers=client.auth).status_code != 404
            or _bot_containers(bot_id)
        ) and time.monotonic() < deadline:
            time.sleep(0.5)


def _bot_containers(bot_id: str) -> list[str]:
    engine = docker.from_env()
    try:
        found = engine.containers.list(all=True, filters={"label": f"fta.bot={bot_id}"})
        return [container.id for container in found]
    finally:
        engine.close()


def test_a_deaf_bots_stop_holds_neither_other_tenants_starts_nor_its_row(
    http: TestClient, sandbox: Sandbox, bots: Bots
) -> None:
    deaf_client, other = sign_up(http, "Deaf"), sign_up(http, "Other")
    for client in (deaf_client, other):
        sandbox.forget_tenant(client.tenant_id)
    deaf = bots.create(deaf_client, "DeafSleeper", hostile_source("DeafSleeper"))
    ordinary = bots.create(other, "EnterNow", ordinary_source("EnterNow"))

    bots.post(deaf_client, deaf, "start")
    bots.wait(deaf_client, deaf, lambda bot: bot["actual_state"] == "starting", timeout=60)
    deadline = time.monotonic() + 60
    while "deaf-sleeper" not in "".join(
        chunk["text"]
        for chunk in http.get(f"/api/v1/bots/{deaf}/logs", headers=deaf_client.auth)
        .json()
        .get("chunks", [])
    ):
        assert time.monotonic() < deadline, "the deaf bot never reached its sleep"
        time.sleep(0.5)

    bots.post(deaf_client, deaf, "stop")
    bots.wait(deaf_client, deaf, lambda bot: bot["actual_state"] == "stopping", timeout=10)
    stop_began = time.monotonic()

    bots.post(other, ordinary, "start")
    waited = bots.wait(other, ordinary, lambda bot: bot["actual_state"] != "stopped", timeout=30)
    assert waited < PROMPT_START_SECONDS, f"the other tenant's start waited {waited:.1f} s"

    asked = time.monotonic()
    bots.post(deaf_client, deaf, "stop")  # locks the deaf bot's row
    assert time.monotonic() - asked < 2, "the bot's row was held during its grace period"
    assert time.monotonic() - stop_began < 10, "the checks above ran within the grace period"

    bots.wait(deaf_client, deaf, lambda bot: bot["actual_state"] == "stopped", timeout=60)
    assert time.monotonic() - stop_began >= 8, "it ignored SIGTERM: killed after the grace"
    assert _bot_containers(deaf) == []
