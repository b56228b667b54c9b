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


def test_a_previous_secret_key_must_be_a_real_other_key() -> None:
    real = {"secret_key": REAL_KEY, "database_url": REAL_DB, "audit_key": REAL_AUDIT_KEY}
    with pytest.raises(ValidationError, match="is the current key"):
        Settings(mode=Mode.PRODUCTION, secret_key_previous=REAL_KEY, **real)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="FTA_SECRET_KEY_PREVIOUS must be at least 32"):
        Settings(mode=Mode.PRODUCTION, secret_key_previous="short", **real)  # type: ignore[arg-type]
    rotating = Settings(mode=Mode.PRODUCTION, secret_key_previous="p" * 48, **real)  # type: ignore[arg-type]
    assert rotating.secret_keys() == (REAL_KEY.encode(), b"p" * 48)
    # An empty value (as .env.example has it) is no previous key.
    assert Settings(mode=Mode.PRODUCTION, secret_key_previous="", **real).secret_keys() == (  # type: ignore[arg-type]
        REAL_KEY.encode(),
    )
