"""Strategy sources used by the sandbox tests (read as text, never imported by the suite)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
# The README's example strategy is tested as it is published.
EXAMPLES = HERE.parents[2] / "docs" / "examples"


def source(name: str) -> str:
    for folder in (HERE, EXAMPLES):
        path = folder / f"{name}.py"
        if path.is_file():
            return path.read_text()
    raise FileNotFoundError(f"no strategy {name} in {HERE} or {EXAMPLES}")
