"""Integration tier: the real application against a real Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.sandbox import Sandbox, running_sandbox


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
