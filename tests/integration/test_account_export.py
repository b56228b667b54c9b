"""The export of an account (GET /api/v1/account/export): one zip of everything it holds (the
account, every strategy version, a backtest really run by the worker with its result, log and
result file, a bot with its trades, an invoice as issued), and nothing of another account."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from fta.audit.models import AuditEvent
from fta.bots import service as bots
from fta.bots.snapshots import TradeSnapshot
from fta.db import session_scope
from fta.privacy import export
from tests.integration.strategies import source
from tests.support.api import Client, sign_up, upload_strategy
from tests.support.configs import SHORT_BACKTEST
from tests.support.invoices import issue_test_invoice
from tests.support.jobs import wait_for_job
from tests.support.sandbox import Sandbox

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

API = "/api/v1"
BOT_CONFIG = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "stake_amount": 100,
    "max_open_trades": 1,
    "dry_run_wallet": 1000,
}


def _bot_with_trades(client: Client, strategy_id: str, name: str) -> tuple[str, list[int]]:
    """A bot, and the trades its container reported (recorded as the worker records them)."""
    created = client.http.post(
        f"{API}/bots",
        json={"name": name, "strategy_id": strategy_id, "config": BOT_CONFIG},
        headers=client.auth,
    )
    assert created.status_code == 201, created.text
    bot_id = str(created.json()["id"])
    opened = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    trades = [
        TradeSnapshot(
            trade_id=trade_id,
            pair="BTC/USDT",
            is_open=False,
            open_date=opened + timedelta(hours=trade_id),
            close_date=opened + timedelta(hours=trade_id, minutes=30),
            amount=Decimal("0.0015"),
            stake_amount=Decimal("100"),
            open_rate=Decimal("66000.5"),
            close_rate=Decimal("66660"),
            profit_abs=Decimal("0.8"),
            profit_ratio=Decimal("0.008"),
        )
        for trade_id in (1, 2, 3)
    ]
    with session_scope() as session:
        bots.record_trades(session, uuid.UUID(bot_id), trades)
        bots.append_log(session, uuid.UUID(bot_id), f"{name} heartbeat\n")
    return bot_id, [1, 2, 3]


def _export(client: Client) -> zipfile.ZipFile:
    answer = client.http.get(f"{API}/account/export", headers=client.auth)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="fta-export-')
    assert answer.headers["cache-control"] == "private, no-store"
    return zipfile.ZipFile(io.BytesIO(answer.content))


def _json(archive: zipfile.ZipFile, name: str) -> Any:
    return json.loads(archive.read(name))


def test_the_export_holds_everything_of_the_account_and_nothing_of_another(
    http: TestClient, sandbox: Sandbox
) -> None:
    client = sign_up(http, "Exporter")
    sandbox.forget_tenant(client.tenant_id)
    stranger = sign_up(http, "Stranger")

    strategy_id = upload_strategy(client, "RsiQuick")
    second = source("RsiQuick") + "\n# Version 2: the same rules, kept for comparison.\n"
    put = http.put(f"{API}/strategies/{strategy_id}", json={"source": second}, headers=client.auth)
    assert put.status_code == 200, put.text
    submitted = http.post(
        f"{API}/jobs",
        json={"kind": "backtest", "strategy_id": strategy_id, "config": SHORT_BACKTEST},
        headers=client.auth,
    )
    assert submitted.status_code == 202, submitted.text
    job_id = str(submitted.json()["id"])
    bot_id, trade_ids = _bot_with_trades(client, strategy_id, "exporter-bot")
    invoice_id = issue_test_invoice(client.tenant_id)

    # Another account's strategy, bot, invoice: none of it may appear.
    strange_strategy = upload_strategy(stranger, "Quick")
    strange_bot, _ = _bot_with_trades(stranger, strange_strategy, "stranger-bot")
    strange_invoice = issue_test_invoice(stranger.tenant_id)

    job = wait_for_job(client, job_id)
    assert job["status"] == "succeeded", job
    archive = _export(client)
    names = set(archive.namelist())
    assert archive.testzip() is None

    account = _json(archive, "account.json")
    assert account["tenant"]["id"] == client.tenant_id
    assert [user["email"] for user in account["users"]] == [client.email]
    assert account["billing"]["status"] == "trialing" and account["plan"]["code"]
    assert "billing_identity" in account and "password_hash" not in json.dumps(account)

    strategy = _json(archive, "strategies/RsiQuick/strategy.json")
    assert strategy["id"] == strategy_id
    assert [v["version"] for v in strategy["versions"]] == [1, 2]
    assert archive.read("strategies/RsiQuick/v1.py").decode() == source("RsiQuick")
    assert archive.read("strategies/RsiQuick/v2.py").decode() == second

    described = _json(archive, f"jobs/{job_id}/job.json")
    assert described["status"] == "succeeded" and described["config"]["timerange"]
    assert described["strategy"] == {"name": "RsiQuick", "version": 2}
    assert described["started_at"] and described["finished_at"]
    assert described["usage"]["cpu_seconds"] is not None
    # The summary as stored (the API's answer adds where the candles came from).
    answered = http.get(f"{API}/jobs/{job_id}/result", headers=client.auth).json()
    stored = {key: value for key, value in answered.items() if key != "market_data"}
    assert _json(archive, f"jobs/{job_id}/result.json") == stored
    assert described["market_data_source"] == answered["market_data"]["source"]
    logs = http.get(f"{API}/jobs/{job_id}/logs", headers=client.auth).text
    assert archive.read(f"jobs/{job_id}/log.txt").decode() == logs and "RsiQuick" in logs
    result_file = described["result_file"]
    assert result_file is not None
    kept = http.get(f"{API}/jobs/{job_id}/archive", headers=client.auth)
    assert archive.read(f"jobs/{job_id}/{result_file['name']}") == kept.content

    assert _json(archive, f"bots/{bot_id}/bot.json")["name"] == "exporter-bot"
    trades = _json(archive, f"bots/{bot_id}/trades.json")
    assert [trade["trade_id"] for trade in trades] == trade_ids
    assert trades[0]["open_rate"] == "66000.500000000000"
    assert archive.read(f"bots/{bot_id}/log.txt").decode() == "exporter-bot heartbeat\n"

    listed = _json(archive, "invoices/invoices.json")
    assert len(listed) == 1
    pdf = http.get(f"{API}/invoices/{invoice_id}.pdf", headers=client.auth).content
    assert archive.read(f"invoices/{listed[0]['file']}") == pdf and pdf.startswith(b"%PDF")

    usage = _json(archive, "usage.json")
    assert [month["period"] for month in usage] == sorted(month["period"] for month in usage)
    assert any(month["consumption"]["events"] > 0 for month in usage)
    audit = _json(archive, "audit.json")
    assert {"account.signup", "auth.login"} <= {event["action"] for event in audit}
    assert b"README.txt" in b" ".join(name.encode() for name in names)

    # Nothing of the other account, anywhere in the zip.
    strangers = [
        stranger.tenant_id,
        stranger.email,
        strange_strategy,
        strange_bot,
        strange_invoice,
        "stranger-bot",
    ]
    for name in names:
        content = archive.read(name)
        for mark in strangers:
            assert mark.encode() not in content and mark not in name, (name, mark)

    # The export is in the account's audit log, with the caller.
    with session_scope() as session:
        exported = session.scalars(
            select(AuditEvent).where(
                AuditEvent.tenant_id == client.tenant_id, AuditEvent.action == "account.export"
            )
        ).all()
    assert len(exported) == 1 and exported[0].actor != "anonymous"


def test_one_export_at_a_time_per_account(http: TestClient) -> None:
    client = sign_up(http, "Twice")
    lease = export.SLOTS.acquire(client.tenant_id)
    try:
        busy = http.get(f"{API}/account/export", headers=client.auth)
        assert busy.status_code == 429, busy.text
        assert busy.headers["retry-after"] == str(export.RETRY_AFTER_SECONDS)
    finally:
        lease.release()
    # Its place is given back once the zip is sent: the next export goes through.
    first = http.get(f"{API}/account/export", headers=client.auth)
    second = http.get(f"{API}/account/export", headers=client.auth)
    assert (first.status_code, second.status_code) == (200, 200)
    with zipfile.ZipFile(io.BytesIO(second.content)) as archive:
        assert "account.json" in archive.namelist()
    assert export.SLOTS.running.get(client.tenant_id) is None
