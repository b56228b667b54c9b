"""Settings refuse placeholder secrets outside development mode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fta.settings import Mode, Settings

REAL_KEY = "k" * 48
REAL_DB = "postgresql+psycopg://fta:Zx81Qw93Lp02@postgres/fta"
PLACEHOLDER_KEY = "changeme-secret-key"
PLACEHOLDER_DB = "postgresql+psycopg://fta:changeme@postgres/fta"


def test_development_accepts_placeholders() -> None:
    settings = Settings(
        mode=Mode.DEVELOPMENT, secret_key=PLACEHOLDER_KEY, database_url=PLACEHOLDER_DB
    )
    assert settings.mode is Mode.DEVELOPMENT


@pytest.mark.parametrize("mode", [Mode.PRODUCTION, Mode.TEST])
def test_placeholders_are_refused_elsewhere(mode: Mode) -> None:
    # Every value is explicit: the environment of the test run holds real secrets.
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(mode=mode, secret_key=PLACEHOLDER_KEY, database_url=REAL_DB)
    with pytest.raises(ValidationError, match="placeholder"):
        Settings(mode=mode, secret_key=REAL_KEY, database_url=PLACEHOLDER_DB)
    with pytest.raises(ValidationError, match="32 characters"):
        Settings(mode=mode, secret_key="short-but-real", database_url=REAL_DB)
    assert Settings(mode=mode, secret_key=REAL_KEY, database_url=REAL_DB).mode is mode


def test_bridge_prefix_must_fit_interface_names() -> None:
    with pytest.raises(ValidationError, match="8-character"):
        Settings(tenant_bridge_prefix="much-too-long-")
