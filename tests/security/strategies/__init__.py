"""Hostile strategies: real freqtrade strategy files that attack the platform when freqtrade
imports them or calls them. They are uploaded as text and run as real jobs; the suite never
imports them.

Each prints what it tried as `PROBE {json}` lines. A strategy that needs values known only to
the test (addresses, canaries, generated secrets) reads them from its `PARAMS` line, which
`source` fills in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARAMS_LINE = "PARAMS: dict = {}\n"


def source(name: str, params: Mapping[str, object] | None = None) -> str:
    text = (HERE / f"{name}.py").read_text()
    if params is None:
        return text
    if text.count(PARAMS_LINE) != 1:
        raise ValueError(f"{name}.py has no single {PARAMS_LINE.strip()!r} line to fill in")
    return text.replace(PARAMS_LINE, f"PARAMS: dict = {dict(params)!r}\n")
