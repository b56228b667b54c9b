"""Programmatic Alembic: `fta migrate` and the test suite use the same code path.

The migrations run as the database's owner role; after them, in the same transaction, the
runtime role (what the portal and the worker log in as) gets its rights from
`fta.db_privileges`, so a table a migration adds is covered before any process uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from alembic import command
from alembic.config import Config
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fta.settings import PLACEHOLDER_MARKERS, Mode

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQL_NAME = r"^[a-z_][a-z0-9_]{0,62}$"


class MigrationSettings(BaseSettings):
    """What `fta migrate` needs, and nothing more: the owner's connection (in FTA_DATABASE_URL
    of the one-shot that runs it), the runtime role to grant to, and the audit key that seals
    the audit chains written before they were keyed."""

    model_config = SettingsConfigDict(env_prefix="FTA_", env_file=None, extra="ignore")

    mode: Mode = Mode.DEVELOPMENT
    database_url: SecretStr = SecretStr(
        "postgresql+psycopg://fta_owner:changeme@127.0.0.1:5432/fta"  # pragma: allowlist secret
    )
    database_runtime_role: Annotated[str, Field(pattern=SQL_NAME)] = "fta_app"
    audit_key: SecretStr = SecretStr("changeme-audit-key")

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> MigrationSettings:
        if self.mode is Mode.DEVELOPMENT:
            return self
        for name in ("database_url", "audit_key"):
            value = getattr(self, name).get_secret_value().lower()
            if any(marker in value for marker in PLACEHOLDER_MARKERS):
                raise ValueError(
                    f"FTA_{name.upper()} still holds a placeholder: generate a real secret "
                    "(make up writes one into .env)"
                )
        return self


def alembic_config(url: str | None = None, runtime_role: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.attributes["url"] = url
    if runtime_role is not None:
        config.attributes["runtime_role"] = runtime_role
    return config


def upgrade(url: str | None = None, runtime_role: str | None = None) -> None:
    """Migrates to head as the user of `url`, then grants `runtime_role` its rights (none
    given: a single-role database, such as a benchmark's, gets no grants)."""
    command.upgrade(alembic_config(url, runtime_role), "head")
