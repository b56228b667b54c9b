"""The images' lock files (images/lock.sh) pin every distribution with its hashes, and agree
with what pyproject.toml and images/build.sh ask for: a dependency added without locking it
again fails here, not in a build."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.wheel_locks import REPO, locked


@pytest.mark.parametrize("image", ["app", "freqtrade"])
def test_every_locked_distribution_is_pinned_with_hashes(image: str) -> None:
    assert len(locked(image)) > 10


def test_the_app_lock_satisfies_pyproject() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = locked("app")
    for spec in meta["project"]["dependencies"] + meta["build-system"]["requires"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not locked: run images/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} does not satisfy {spec}: run images/lock.sh"
        )


def test_the_freqtrade_lock_pins_the_version_the_build_names() -> None:
    build = (REPO / "images" / "build.sh").read_text()
    version = re.search(r"^freqtrade_version=(\S+)$", build, re.M)
    assert version is not None
    assert locked("freqtrade")["freqtrade"] == version.group(1)
