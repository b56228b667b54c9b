"""Strategy sources used by the sandbox tests (read as text, never imported by the suite)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def source(name: str) -> str:
    return (HERE / f"{name}.py").read_text()
