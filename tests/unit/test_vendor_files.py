"""The pages' script libraries come from Debian's packages, each with its licence."""

from __future__ import annotations

from fta.portal import vendor


def test_every_vendored_file_is_installed() -> None:
    assert [name for name, (path, _) in vendor.FILES.items() if not path.is_file()] == []


def test_every_library_is_served_with_its_licence() -> None:
    licences = {name.removesuffix(".LICENSE") for name in vendor.FILES if name.endswith(".LICENSE")}
    scripts = {name for name in vendor.FILES if not name.endswith(".LICENSE")}
    assert licences == {"chart.js", "codemirror"}
    assert all(any(name.startswith(lib.split(".")[0]) for lib in licences) for name in scripts)
