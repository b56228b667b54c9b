"""Session-wide fixtures: a migrated throwaway database, generated secrets, the application,
and the worker's sandbox (gateway, socket proxy, worker thread) for tests that run jobs."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from tests.support.docker_resources import TEST_INSTANCE
from tests.support.identities import SELLER_ENV
from tests.support.sandbox import Sandbox, running_sandbox

if TYPE_CHECKING:
    from tests.support.database import MigratedDatabase

pytest_plugins = [
    "tests.support.browser",
    "tests.support.database",
    "tests.support.docker_resources",
    "tests.support.smtp_sink",
    "tests.support.socket_proxy",
    "tests.support.tenant_disks",
]


@pytest.fixture(scope="session")
def database_url(migrated: MigratedDatabase) -> str:
    """The application's connection: the runtime role, which holds row rights only."""
    return migrated.runtime_url


@pytest.fixture(scope="session")
def app_settings(database_url: str) -> Iterator[None]:
    """Points the fta settings at the test database, with secrets generated for this run."""
    from fta.db import get_engine, get_sessionmaker
    from fta.settings import get_settings

    os.environ.update(
        FTA_MODE="test",
        FTA_DATABASE_URL=database_url,
        FTA_SECRET_KEY=secrets.token_urlsafe(48),
        FTA_AUDIT_KEY=secrets.token_urlsafe(48),
        # The socket proxies of the session serve this installation only.
        FTA_INSTANCE=TEST_INSTANCE,
        # Every in-process request comes from one address, and the tests' tenants upload
        # strategies at a script's pace; the throttle tests set their own limits.
        FTA_LOGIN_MAX_FAILURES_PER_IP="10000",
        FTA_SIGNUP_MAX_PER_IP="10000",
        FTA_PASSWORD_RESETS_PER_IP="10000",
        FTA_STRATEGY_UPLOADS_PER_WINDOW="10000",
        FTA_PAYPAL_WEBHOOK_PER_ADDRESS_PER_MINUTE="10000",
        FTA_PAYPAL_WEBHOOK_PER_MINUTE="100000",
        # A fictional seller: no invoice is issued without a legal identity.
        **SELLER_ENV,
        # No test reaches the real VIES: a billing round's re-check finds nobody listening.
        FTA_VIES_URL="http://127.0.0.1:9/check-vat-number",
    )
    for cached in (get_settings, get_engine, get_sessionmaker):
        cached.cache_clear()
    yield
    get_engine().dispose()


@pytest.fixture(scope="session")
def http(app_settings: None) -> Iterator[TestClient]:
    from fta.portal.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def sandbox(app_settings: None, docker_proxy_url: str) -> Iterator[Sandbox]:
    """A worker thread driving Docker through the socket proxy, and a market-data gateway."""
    with running_sandbox(docker_proxy_url) as sandbox:
        yield sandbox
