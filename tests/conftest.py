"""Session-wide test settings: a migrated throwaway database and generated secrets."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from tests.support.database import migrated_database

pytest_plugins = ["tests.support.docker_resources", "tests.support.socket_proxy"]


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with migrated_database() as url:
        yield url


@pytest.fixture(scope="session")
def app_settings(database_url: str) -> Iterator[None]:
    """Points the fta settings at the test database, with secrets generated for this run."""
    from fta.db import get_engine, get_sessionmaker
    from fta.settings import get_settings

    os.environ.update(
        FTA_MODE="test",
        FTA_DATABASE_URL=database_url,
        FTA_SECRET_KEY=secrets.token_urlsafe(48),
    )
    for cached in (get_settings, get_engine, get_sessionmaker):
        cached.cache_clear()
    yield
    get_engine().dispose()
