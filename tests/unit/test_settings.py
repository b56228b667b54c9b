"""Settings refuse placeholder secrets outside development mode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fta.settings import Mode, Settings

REAL_KEY = "k" * 48
REAL_AUDIT_KEY = "a" * 48
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
    real = {"secret_key": REAL_KEY, "database_url": REAL_DB, "audit_key": REAL_AUDIT_KEY}
    for name, placeholder in (
        ("secret_key", PLACEHOLDER_KEY),
        ("database_url", PLACEHOLDER_DB),
        ("audit_key", "changeme-audit-key"),
    ):
        with pytest.raises(ValidationError, match=f"FTA_{name.upper()} still holds a placeholder"):
            Settings(mode=mode, **{**real, name: placeholder})  # type: ignore[arg-type]
    for name in ("secret_key", "audit_key"):
        with pytest.raises(ValidationError, match=f"FTA_{name.upper()} must be at least 32"):
            Settings(mode=mode, **{**real, name: "short-but-real"})  # type: ignore[arg-type]
    assert Settings(mode=mode, **real).mode is mode  # type: ignore[arg-type]


def test_bridge_prefix_must_fit_interface_names() -> None:
    with pytest.raises(ValidationError, match="8-character"):
        Settings(tenant_bridge_prefix="much-too-long-")
