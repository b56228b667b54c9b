"""The relay to bots' APIs in the market-data gateway serves the portal alone, reaches bots'
API ports alone, and treats a bot's answer as hostile.

First against the real gateway process on loopback (`python -m fta.gateway`), with a tenant
pool on 127.1.0.0/16 where a hostile stand-in bot listens at 127.1.0.20:8080: unsigned,
badly signed, stale and replayed requests, other targets and routes, requests from the pool,
and the bot's floods, drips, markup, compression and headers. Then in Docker: a container on
a tenant network cannot use the real gateway container's relay to reach another tenant's
running bot, which the same signed request from outside the pool does reach.
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.sync.server import ServerConnection, serve

from fta.bots import relay as bot_relay
from fta.bots.models import Bot
from fta.db import session_scope
from fta.freqtrade import bot_ws
from fta.freqtrade.bot_api import (
    BOT_STATUS_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TARGET_HEADER,
    TIME_HEADER,
    relay_signature,
)
from fta.runtime import ContainerSpec, DockerJobRunner
from fta.settings import get_settings
from fta.worker.network_slots import take_slot_now
from tests.support.api import Client, sign_up, upload_strategy
from tests.support.docker_resources import BASE_IMAGE
from tests.support.host_processes import free_port, gateway_process
from tests.support.sandbox import Sandbox
from tests.support.socket_proxy import TEST_LIMITS

POOL = "127.1.0.0/16"
BOT = "127.1.0.20"
# An address of the pool (a tenant network's, as the relay sees it) to send from.
TENANT_SOURCE = "127.1.0.9"
KEY = secrets.token_hex(32)
AUTHORIZATION = "Basic ZnRhOnNlY3JldA=="  # pragma: allowlist secret
DRIP_SECONDS = 40
BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "1m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


class HostileBot(BaseHTTPRequestHandler):
    """A bot's API server as a hostile tenant would write it; it notes what it was sent."""

    seen: ClassVar[list[dict[str, str]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, body: bytes, content_type: str = "application/json", **extra: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        HostileBot.seen.append({k.lower(): v for k, v in self.headers.items()})
        path = self.path.split("?")[0]
        if path == "/api/v1/ping":
            self._send(
                b'{"status":"pong","html":"<script>alert(1)</script>"}',
                Set_Cookie="fta_session=stolen; Path=/",
                X_Evil="1",
                Access_Control_Allow_Origin="*",
            )
        elif path == "/api/v1/status":  # a flood: 5 MiB of JSON
            self._send(b"[" + b"1," * (5 * 1024 * 1024 // 2) + b"1]")
        elif path == "/api/v1/balance":  # markup
            self._send(b"<html><script>alert(1)</script></html>", "text/html")
        elif path == "/api/v1/count":  # a bomb behind compression
            self._send(gzip.compress(b"[" + b"0," * 1_000_000 + b"0]"), Content_Encoding="gzip")
        elif path == "/api/v1/profit":  # a drip: one byte every second, for long
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(DRIP_SECONDS))
            self.end_headers()
            for _ in range(DRIP_SECONDS):
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(1)
        else:
            self._send(json.dumps({"path": self.path}).encode())

    do_POST = do_GET
    do_DELETE = do_GET


@dataclass(frozen=True)
class Relay:
    url: str
    market: str


@pytest.fixture(scope="module")
def hostile_bot() -> Iterator[None]:
    server = ThreadingHTTPServer((BOT, 8080), HostileBot)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, hostile_bot: None) -> Iterator[Relay]:
    port = free_port()
    log = tmp_path_factory.mktemp("relay") / "gateway.log"
    with gateway_process(
        "replay",
        log,
        MODE="test",
        BOT_RELAY_KEY=KEY,
        BOT_RELAY_HOST="127.0.0.1",
        BOT_RELAY_PORT=str(port),
        TENANT_SUBNET_POOL=POOL,
    ) as market:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
        yield Relay(url, market)


def signed(
    method: str,
    path: str,
    *,
    target: str = f"{BOT}:8080",
    query: str = "",
    body: bytes = b"",
    key: str = KEY,
    timestamp: int | None = None,
    authorization: str = AUTHORIZATION,
) -> dict[str, str]:
    """The portal's headers for one relayed request."""
    stamp = int(time.time()) if timestamp is None else timestamp
    nonce = secrets.token_hex(16)
    signature = relay_signature(
        key.encode(),
        method=method,
        target=target,
        path=path,
        query=query,
        timestamp=stamp,
        nonce=nonce,
        body=body,
        authorization=authorization,
    )
    return {
        TARGET_HEADER: target,
        TIME_HEADER: str(stamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature,
        "Authorization": authorization,
    }


def send(
    relay: Relay, method: str, path: str, headers: dict[str, str], **kwargs: Any
) -> httpx.Response:
    return httpx.request(method, relay.url + path, headers=headers, timeout=60, **kwargs)


def test_a_signed_request_reaches_the_bot_with_nothing_of_the_callers_headers(
    relay: Relay,
) -> None:
    HostileBot.seen.clear()
    headers = {
        **signed("GET", "/api/v1/ping"),
        "Cookie": "fta_session=abc",
        "X-Forwarded-For": "1.2.3.4",
        "X-Evil": "1",
    }
    answer = send(relay, "GET", "/api/v1/ping", headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers[BOT_STATUS_HEADER] == "200"
    assert answer.json()["status"] == "pong"
    # The bot's headers stay behind.
    names = {name.lower() for name in answer.headers}
    assert not {"set-cookie", "x-evil", "access-control-allow-origin"} & names
    (sent,) = HostileBot.seen
    assert sent["authorization"] == AUTHORIZATION
    assert not {"cookie", "x-forwarded-for", "x-evil", TARGET_HEADER, SIGNATURE_HEADER} & set(sent)


def test_unsigned_and_badly_signed_requests_are_refused(relay: Relay) -> None:
    assert send(relay, "GET", "/api/v1/ping", {}).status_code == 401
    only_target = {TARGET_HEADER: f"{BOT}:8080", "Authorization": AUTHORIZATION}
    assert send(relay, "GET", "/api/v1/ping", only_target).status_code == 401
    other_key = signed("GET", "/api/v1/ping", key=secrets.token_hex(32))
    assert send(relay, "GET", "/api/v1/ping", other_key).status_code == 401
    # Signed for one request, sent as another: path, method, query, body, credentials.
    ping = signed("GET", "/api/v1/ping")
    assert send(relay, "GET", "/api/v1/status", ping).status_code == 401
    assert send(relay, "GET", "/api/v1/ping", signed("GET", "/api/v1/ping", query="a=1"),
                params={"a": "2"}).status_code == 401  # fmt: skip
    start = signed("POST", "/api/v1/start")
    assert send(relay, "POST", "/api/v1/start", start, content=b"{}").status_code == 401
    other_credential = {**signed("GET", "/api/v1/ping"), "Authorization": "Basic eDp5"}
    assert send(relay, "GET", "/api/v1/ping", other_credential).status_code == 401
    garbage = {**signed("GET", "/api/v1/ping"), SIGNATURE_HEADER: "zz" * 32}
    assert send(relay, "GET", "/api/v1/ping", garbage).status_code == 401


def test_stale_and_replayed_requests_are_refused(relay: Relay) -> None:
    stale = signed("GET", "/api/v1/ping", timestamp=int(time.time()) - 120)
    assert send(relay, "GET", "/api/v1/ping", stale).status_code == 401
    future = signed("GET", "/api/v1/ping", timestamp=int(time.time()) + 120)
    assert send(relay, "GET", "/api/v1/ping", future).status_code == 401
    once = signed("GET", "/api/v1/ping")
    assert send(relay, "GET", "/api/v1/ping", once).status_code == 200
    replayed = send(relay, "GET", "/api/v1/ping", once)
    assert replayed.status_code == 401 and "replayed" in replayed.json()["detail"]


@pytest.mark.parametrize(
    "target",
    [
        "127.1.0.1:8080",  # a tenant subnet's bridge
        "127.1.0.2:8080",  # the gateway itself
        "127.1.0.3:8080",  # the silent DNS address
        "127.1.0.5:8080",  # the subnet's lower half
        "127.1.0.31:8080",  # its broadcast address
        "127.0.0.1:8080",  # outside the pool: the host
        "10.209.0.5:8080",  # the control network
        "169.254.169.254:80",  # a metadata service
        f"{BOT}:8090",  # a bot's address, another port
        f"{BOT}:22",
        f"{BOT}:08080",
        "localhost:8080",
        f"{BOT}",
    ],
)
def test_targets_other_than_a_bots_api_are_refused(relay: Relay, target: str) -> None:
    answer = send(relay, "GET", "/api/v1/ping", signed("GET", "/api/v1/ping", target=target))
    assert answer.status_code == 403, answer.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/strategy/Mine"),
        ("POST", "/api/v1/backtest"),
        ("POST", "/api/v1/forceenter"),
        ("DELETE", "/api/v1/trades/1"),
        ("GET", "/api/v1/message/ws"),
        ("GET", "/docs"),
        ("GET", "/"),
        ("GET", "/api/v2/ping"),
    ],
)
def test_routes_outside_the_allow_list_are_refused(relay: Relay, method: str, path: str) -> None:
    answer = send(relay, method, path, signed(method, path))
    assert answer.status_code == 403, answer.text


def test_requests_from_the_tenant_pool_are_refused_whatever_they_carry(relay: Relay) -> None:
    transport = httpx.HTTPTransport(local_address=TENANT_SOURCE)
    with httpx.Client(transport=transport, timeout=30) as from_tenant:
        answer = from_tenant.get(relay.url + "/api/v1/ping", headers=signed("GET", "/api/v1/ping"))
    assert answer.status_code == 403
    assert answer.json() == {"detail": "the relay does not serve tenant networks"}
    # The market data still serves that network: only the relay is closed to it.
    with httpx.Client(transport=httpx.HTTPTransport(local_address=TENANT_SOURCE)) as market:
        assert market.get(relay.market + "/healthz").status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/api/v1/status", 502, "too large"),
        ("/api/v1/balance", 502, "JSON"),
        ("/api/v1/count", 502, "JSON"),
        ("/api/v1/profit", 504, "in time"),
    ],
)
def test_a_hostile_bots_answers_are_cut_short(
    relay: Relay, path: str, status: int, detail: str
) -> None:
    started = time.monotonic()
    answer = send(relay, "GET", path, signed("GET", path))
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]
    assert BOT_STATUS_HEADER not in answer.headers
    assert time.monotonic() - started < 30


def test_a_placeholder_relay_key_is_refused_outside_development(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="gateway did not start"),
        gateway_process(
            "replay",
            tmp_path / "gateway.log",
            MODE="production",
            BOT_RELAY_KEY="changeme-bot-relay-key-0123456789abcdef",  # pragma: allowlist secret
            BOT_RELAY_PORT=str(free_port()),
        ),
    ):
        pass
    assert "FTA_BOT_RELAY_KEY" in (tmp_path / "gateway.log").read_text()


# --- in Docker: a tenant's container and the real gateway container -------------------------


@dataclass(frozen=True)
class TenantBot:
    client: Client
    bot_id: uuid.UUID
    address: str


def _api_address(bot_id: uuid.UUID) -> str | None:
    with session_scope() as session:
        bot = session.get(Bot, bot_id)
        return None if bot is None else bot.api_address


@pytest.fixture(scope="module")
def tenant_bot(http: TestClient, sandbox: Sandbox) -> Iterator[TenantBot]:
    """Tenant A's running bot, and the address the worker recorded for its API."""
    client = sign_up(http, "Victim")
    sandbox.forget_tenant(client.tenant_id)
    strategy = upload_strategy(client, "EnterNow")
    body = {"name": "target", "strategy_id": strategy, "config": BOT_CONFIG}
    created = http.post("/api/v1/bots", json=body, headers=client.auth)
    assert created.status_code == 201, created.text
    bot_id = uuid.UUID(created.json()["id"])
    assert http.post(f"/api/v1/bots/{bot_id}/start", headers=client.auth).status_code == 202
    try:
        deadline = time.monotonic() + 240
        while (address := _api_address(bot_id)) is None:
            assert time.monotonic() < deadline, "the worker recorded no API address"
            time.sleep(1)
        yield TenantBot(client, bot_id, address)
    finally:
        http.delete(f"/api/v1/bots/{bot_id}", headers=client.auth)


def _signed_for(bot: TenantBot, path: str) -> dict[str, str]:
    key = get_settings().bot_relay_key.get_secret_value()
    with session_scope() as session:
        row = session.get(Bot, bot.bot_id)
        assert row is not None
        authorization = bot_relay.api_secrets(row).authorization
    target = f"{bot.address}:8080"
    stamp, nonce = int(time.time()), secrets.token_hex(16)
    signature = relay_signature(
        key.encode(),
        method="GET",
        target=target,
        path=path,
        query="",
        timestamp=stamp,
        nonce=nonce,
        body=b"",
        authorization=authorization,
    )
    return {
        TARGET_HEADER: target,
        TIME_HEADER: str(stamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature,
        "Authorization": authorization,
    }


def _http_probe(name: str, host: str, port: int, path: str, headers: dict[str, str]) -> str:
    """Bash that sends one request (3 s at most) and prints `PROBE name rc status-line`."""
    request = f"GET {path} HTTP/1.0\\r\\nHost: {host}\\r\\n"
    request += "".join(f"{key}: {value}\\r\\n" for key, value in headers.items())
    request += "\\r\\n"
    connect = f"exec 3<>/dev/tcp/{host}/{port}; printf '{request}' >&3; head -n 1 <&3"
    return (
        f'out=$(timeout 3 bash -c "{connect}" 2>&1); rc=$?; '
        f'echo "PROBE {name} $rc $(printf %s "$out" | tr -d "\\r" | tail -n 1)"'
    )


@pytest.mark.docker
@pytest.mark.timeout(600)
def test_a_tenant_container_cannot_use_the_relay_to_reach_another_tenants_bot(
    http: TestClient, sandbox: Sandbox, tenant_bot: TenantBot
) -> None:
    # The relay reaches the bot from outside the pool (the portal's place): the control.
    deadline = time.monotonic() + 90
    while True:
        answer = httpx.get(
            f"{sandbox.relay_url}/api/v1/ping", headers=_signed_for(tenant_bot, "/api/v1/ping")
        )
        if answer.status_code == 200 and answer.json() == {"status": "pong"}:
            break
        assert time.monotonic() < deadline, answer.text
        time.sleep(1)

    # Tenant B gets its network as the worker gives one, and runs a container on it.
    prober = sign_up(http, "Prober")
    sandbox.forget_tenant(prober.tenant_id)
    settings = get_settings()
    slot = take_slot_now(prober.tenant_id, settings, datetime.now(UTC))
    runner = DockerJobRunner(settings, extra_labels=sandbox.labels)
    try:
        network = runner.ensure_tenant_network(prober.tenant_id, slot)
        gateway = network.gateway_ip
        script = "\n".join(
            [
                _http_probe("market", gateway, 8090, "/healthz", {}),
                # A correctly signed request: only its source differs from the control's.
                _http_probe(
                    "relay", gateway, 8091, "/api/v1/ping", _signed_for(tenant_bot, "/api/v1/ping")
                ),
                _http_probe("bot", tenant_bot.address, 8080, "/api/v1/ping", {}),
            ]
        )
        spec = ContainerSpec(
            tenant_id=prober.tenant_id,
            owner_kind="job",
            owner_id="relay-probe",
            image=BASE_IMAGE,
            command=["bash", "-c", script],
            env={},
            limits=TEST_LIMITS,
            mounts=[],
            network=network.name,
            extra_hosts=network.extra_hosts,
            dns=network.dns,
        )
        container_id = runner.create(spec)
        try:
            runner.start(container_id)
            runner.wait(container_id, 60)
            lines = list(runner.follow_logs(container_id))
        finally:
            runner.remove(container_id)
    finally:
        runner.close()
    probes = {
        match[1]: (int(match[2]), match[3])
        for line in lines
        if (match := re.fullmatch(r"PROBE (\S+) (\d+) ?(.*)", line))
    }
    assert probes["market"] == (0, "HTTP/1.1 200 OK"), lines  # the network works
    assert probes["relay"] == (0, "HTTP/1.1 403 Forbidden"), lines  # refused for its source
    assert probes["bot"][0] != 0 and "HTTP" not in probes["bot"][1], lines  # no route at all


@pytest.mark.skipif(
    not (shutil.which("docker-compose") or shutil.which("docker")), reason="no compose"
)
def test_the_relay_key_is_generated_and_given_to_the_portal_and_the_gateway_only(
    tmp_path: Path,
) -> None:
    from tests.e2e.test_stack_up_config import generate, parse_env, rendered_services

    env_file = tmp_path / ".env"
    generate(env_file)
    key = parse_env(env_file)["FTA_BOT_RELAY_KEY"]
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    services = rendered_services(env_file)
    holders = {
        name
        for name, service in services.items()
        if "FTA_BOT_RELAY_KEY" in (service.get("environment") or {})
    }
    assert holders == {"portal", "market-data"}
    portal, gateway = services["portal"]["environment"], services["market-data"]["environment"]
    assert portal["FTA_BOT_RELAY_KEY"] == gateway["FTA_BOT_RELAY_KEY"] == key
    assert portal["FTA_BOT_RELAY_URL"] == "http://market-data:8091"
    assert gateway["FTA_BOT_RELAY_PORT"] == "8091"
    assert portal["FTA_TENANT_SUBNET_POOL"] == gateway["FTA_TENANT_SUBNET_POOL"]
    # The portal stays off the tenant networks and off Docker.
    assert list(services["portal"]["networks"]) == ["control"]


# --- the websocket ---------------------------------------------------------------------------

WS_BOT = "127.1.0.21"
WS_PATH = "/api/v1/message/ws"
WS_TOKEN = "ws-" + secrets.token_hex(8)


def _ws_bot_session(bot: ServerConnection) -> None:
    """A bot's websocket as freqtrade serves it: its token in the query; a whitelist request
    answered, then a message with markup and one far too large."""
    if bot.request is None or bot.request.path != f"{WS_PATH}?token={WS_TOKEN}":
        bot.close(4401)
        return
    for text in bot:
        request = json.loads(text)
        if request == {"type": "whitelist"}:
            bot.send(json.dumps({"type": "whitelist", "data": ["BTC/USDT"]}))
        elif request["type"] == "analyzed_df":
            bot.send(json.dumps({"type": "strategy_msg", "data": "<b>bold</b>"}))
            bot.send("x" * (bot_ws.MAX_BOT_MESSAGE_BYTES + 1))


@pytest.fixture(scope="module")
def ws_bot() -> Iterator[None]:
    with serve(_ws_bot_session, WS_BOT, 8080) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield
        server.shutdown()


def _signed_ws(key: str = KEY, target: str = f"{WS_BOT}:8080") -> dict[str, str]:
    """The portal's signed upgrade, the bot's websocket token in its Authorization."""
    return signed("GET", WS_PATH, target=target, key=key, authorization=f"Bearer {WS_TOKEN}")


def _ws_url(relay: Relay, query: str = "") -> str:
    return relay.url.replace("http", "ws", 1) + WS_PATH + query


@pytest.mark.usefixtures("ws_bot")
def test_a_signed_upgrade_reaches_the_bots_websocket_and_its_messages_are_bounded(
    relay: Relay,
) -> None:
    with ws_connect(_ws_url(relay), additional_headers=_signed_ws(), proxy=None) as portal:
        portal.send(json.dumps({"type": "whitelist"}))
        assert json.loads(portal.recv(timeout=10)) == {"type": "whitelist", "data": ["BTC/USDT"]}
        portal.send(json.dumps({"type": "analyzed_df", "data": {"limit": 5, "pair": None}}))
        assert json.loads(portal.recv(timeout=10))["data"] == "<b>bold</b>"
        # The oversized message is not passed on: the socket closes as too big.
        with pytest.raises(ConnectionClosed) as closed:
            portal.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == bot_ws.TOO_BIG


@pytest.mark.usefixtures("ws_bot")
@pytest.mark.parametrize(
    "case", ["unsigned", "other key", "query", "other target", "from the pool", "replayed"]
)
def test_upgrades_that_are_not_the_portals_are_refused(relay: Relay, case: str) -> None:
    headers = _signed_ws(key=secrets.token_hex(32) if case == "other key" else KEY)
    if case == "unsigned":
        del headers[SIGNATURE_HEADER]
    if case == "other target":
        headers = _signed_ws(target="127.0.0.1:8080")
    url = _ws_url(relay, f"?token={WS_TOKEN}" if case == "query" else "")
    sock = None
    if case == "from the pool":
        sock = socket.create_connection(
            ("127.0.0.1", int(relay.url.rsplit(":", 1)[1])), source_address=(TENANT_SOURCE, 0)
        )
    if case == "replayed":
        with ws_connect(url, additional_headers=headers, proxy=None):
            pass
    with (
        pytest.raises(InvalidStatus) as refused,
        ws_connect(url, additional_headers=headers, proxy=None, sock=sock),
    ):
        pass
    assert refused.value.response.status_code == 403
