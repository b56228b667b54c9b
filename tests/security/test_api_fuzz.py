"""Property-based fuzzing of every operation (schemathesis, in process): whatever a client
sends, the API never answers 5xx and never contradicts its published schema."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from tests.security.api_support import (
    API,
    cancel_queued_jobs,
    create_bot,
    create_strategy,
    finish_job,
    log_in,
    parked_client,
    submit_backtest,
    unique_ip,
)
from tests.support.api import Client
from tests.support.invoices import issue_test_invoice

# Refusing schema-valid data is this API's design, not a defect: the schema cannot say that a
# source must parse as Python, or which freqtrade options a config may use.
CONFIG = schemathesis.Config.from_dict({"checks": {"positive_data_acceptance": {"enabled": False}}})


@dataclass
class Fuzzed:
    """The caller of every fuzzed request (parked: what it queues never runs) and objects of
    its own, so that valid cases also reach existing resources, not only unknown ids."""

    client: Client
    # Fuzzed password changes fail and lock their account's log-in: not the main client's.
    password_changer: Client
    path_values: dict[str, str]


@pytest.fixture(scope="module")
def fuzzed(http: TestClient) -> Iterator[Fuzzed]:
    client = parked_client(http, "Fuzz")
    strategy_id, _ = create_strategy(http, client.auth, comment="fuzzed")
    job_id = submit_backtest(http, client.auth, strategy_id)
    finish_job(job_id, log="fuzzed\n", summary={"total_trades": 1}, archive=b"fuzzed")
    bot_id = create_bot(http, client.auth, strategy_id, log="fuzzed\n")
    changer = parked_client(http, "FuzzPassword")
    path_values = {
        "strategy_id": strategy_id,
        "job_id": job_id,
        "bot_id": bot_id,
        "invoice_id": issue_test_invoice(client.tenant_id),
    }
    yield Fuzzed(client, changer, path_values)
    cancel_queued_jobs(client.tenant_id)


@pytest.fixture(scope="module")
def api_schema(http: TestClient) -> Any:
    return schemathesis.openapi.from_asgi(f"{API}/openapi.json", http.app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_api_holds_its_contract(
    case: schemathesis.Case, http: TestClient, fuzzed: Fuzzed
) -> None:
    client = fuzzed.client
    headers = dict(client.auth)
    if case.operation.path == f"{API}/auth/logout":
        # Logging out would revoke the session every other case uses.
        headers = log_in(http, client.email, client.password)
    elif case.operation.path == f"{API}/auth/password":
        headers = dict(fuzzed.password_changer.auth)
    # An address per case: the log-in throttle must not lock the rest of the session out.
    headers["X-Real-IP"] = unique_ip()
    if case.meta is not None and case.meta.generation.mode is schemathesis.GenerationMode.POSITIVE:
        case.path_parameters = {
            name: fuzzed.path_values.get(name, value)
            for name, value in (case.path_parameters or {}).items()
        }
    case.call_and_validate(headers=headers)
