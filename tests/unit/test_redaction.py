"""Secret formats that must never survive redaction, and text that must."""

from __future__ import annotations

import pytest

from fta.redaction import MASK, redact

SECRETS = {
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dGhpcy1pcy1hLXNpZ25hdHVyZQ",
    "url password": "postgresql://fta:Sup3rS3cretPw@postgres:5432/fta",
    "aws key id": "AKIAIOSFODNN7EXAMPLE",
    "bearer": "Authorization: Bearer abcDEF123456ghiJKL789",
    "env secret": "FTA_SECRET_KEY=9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "json password": '{"password": "hunter2hunter2"}',
    "paypal secret": "client_secret: EHd8aV3x-Zt9YpQ2rL7mN4kJ6hG1fD0sA5wE8uI3oP2yT7rE4wQ9",
    "exchange key": "key vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    "hex key": "secret 3b2c6a6f0e2d4c1b9a8f7e6d5c4b3a291817161514131211100f0e0d0c0b0a09",
    "pem": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
}


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_secret_formats_are_masked(name: str) -> None:
    text = SECRETS[name]
    redacted = redact(f"line before {text} after")
    assert MASK in redacted
    for fragment in ("Sup3rS3cretPw", "hunter2hunter2", "AKIAIOSFODNN7EXAMPLE", "MIIEvQIBADANBg"):
        assert fragment not in redacted


def test_extra_secrets_are_masked_verbatim() -> None:
    assert redact("token canary-123 leaked", ("canary-123",)) == f"token {MASK} leaked"


@pytest.mark.parametrize(
    "line",
    [
        "2024-01-01 12:00:00 - freqtrade.optimize.backtesting - INFO - Loading data from 2024",
        "BTC/USDT | 12 | 1.25 | 15.03 | 0:45:00 | 8 0 4 66.7",
        "Result for strategy SampleStrategy",
        "job 3f2b1c9e-8d7a-4b6c-9e5d-1a2b3c4d5e6f finished",
    ],
)
def test_ordinary_lines_are_untouched(line: str) -> None:
    assert redact(line) == line
