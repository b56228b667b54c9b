"""fta.freqtrade stands on its own: no fta domain or application package below it, and its
container entry imports none at all (tests/unit/test_freqtrade_entry.py checks the rest)."""

from __future__ import annotations

import ast
from pathlib import Path

from fta.freqtrade import markers

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "fta" / "freqtrade"
ENTRY = PACKAGE / "entry.py"
# What fta.freqtrade may import of fta: nothing of the domains or the applications.
ALLOWED_FTA = {"fta.errors", "fta.markets", "fta.settings"}


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_package_imports_no_fta_domain_or_application() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        for name in _imported(path):
            if name == "fta" or name.startswith("fta."):
                assert path != ENTRY, name
                assert name.startswith("fta.freqtrade.") or name in ALLOWED_FTA, (path.name, name)


def test_every_marker_starts_like_one() -> None:
    prefixes = [markers.RESULT_PREFIX, markers.ERROR_PREFIX, markers.ARCHIVE_PREFIX]
    prefixes.append(markers.STATUS_PREFIX)
    assert all(prefix.startswith(markers.MARKER_START) for prefix in prefixes)
    assert not markers.ESCAPED_MARKER.startswith(markers.MARKER_START)
