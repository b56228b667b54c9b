"""A throwaway, migrated Postgres database for one test session."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def _admin_url() -> str:
    url = os.environ.get("FTA_TEST_ADMIN_URL")
    if not url:
        pytest.fail(
            "FTA_TEST_ADMIN_URL is not set: run the suite with `make test`, which starts "
            "a throwaway Postgres (scripts/test-postgres.sh)"
        )
    return url


@contextmanager
def migrated_database() -> Iterator[str]:
    """Creates a uniquely named database, migrates it to head, drops it afterwards."""
    from fta.migrate import upgrade

    admin_url = _admin_url()
    name = f"fta_test_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
