"""Integration tier: the real application against a real Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient


@pytest.fixture(scope="session")
def http(app_settings: None) -> Iterator[TestClient]:
    from fta.portal.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client
