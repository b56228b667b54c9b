"""A throwaway, migrated Postgres database for one test session, with the production split
of roles: an owner that ran the migrations and a runtime role the application connects as,
which holds row rights only (see fta.db_privileges)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class MigratedDatabase:
    # What the application connects with: the runtime role, rows only.
    runtime_url: str
    runtime_role: str
    # The owner of the schema, which ran the migrations (not a superuser).
    owner_url: str


def _admin_url() -> str:
    url = os.environ.get("FTA_TEST_ADMIN_URL")
    if not url:
        pytest.fail(
            "FTA_TEST_ADMIN_URL is not set: run the suite with `make test`, which starts "
            "a throwaway Postgres (scripts/test-postgres.sh)"
        )
    return url


@contextmanager
def migrated_database() -> Iterator[MigratedDatabase]:
    """Creates a uniquely named database and its two roles, migrates it to head as the owner,
    and drops all three afterwards (roles are the cluster's, so each session has its own)."""
    from fta.migrate import upgrade

    admin_url = _admin_url()
    name = f"fta_test_{secrets.token_hex(4)}"
    owner, runtime = f"{name}_owner", f"{name}_app"
    passwords = {owner: secrets.token_hex(16), runtime: secrets.token_hex(16)}
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for role, password in passwords.items():
            connection.execute(
                text(
                    f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                    f"PASSWORD '{password}'"
                )
            )
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))

    def url_of(role: str) -> str:
        url = make_url(admin_url).set(database=name, username=role, password=passwords[role])
        return url.render_as_string(hide_password=False)

    try:
        upgrade(url_of(owner), runtime)
        yield MigratedDatabase(
            runtime_url=url_of(runtime), runtime_role=runtime, owner_url=url_of(owner)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            for role in passwords:
                connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated() -> Iterator[MigratedDatabase]:
    """The session's database; the application gets its runtime URL (`database_url`)."""
    with migrated_database() as database:
        yield database


@pytest.fixture(scope="session")
def owner_engine(migrated: MigratedDatabase) -> Iterator[Engine]:
    """A connection as the schema's owner: what reaches past the runtime role's rights, for
    tests of the triggers that guard history even against the owner."""
    engine = create_engine(migrated.owner_url)
    yield engine
    engine.dispose()
