"""The repository secret scan (scripts/secret-scan.sh, run by `make lint`): it passes on the
repository as it is, and fails as soon as a real-looking key is added to it.

Keys are generated for each run in a throwaway repository holding a copy of the script and
of the reviewed baseline; nothing secret-shaped is written in this file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import string
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOOK = Path(sys.executable).with_name("detect-secrets-hook")
BASELINE = ".secrets.baseline"
SCRIPT = "scripts/secret-scan.sh"


def _scan(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", SCRIPT],
        cwd=repo,
        env={**os.environ, "DETECT_SECRETS_HOOK": str(HOOK)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """A git repository with the scan script, the reviewed baseline and an ordinary file."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / SCRIPT, repo / SCRIPT)
    shutil.copy(REPO / BASELINE, repo / BASELINE)
    (repo / "README.md").write_text("A project with nothing secret in it.\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    return repo


def _aws_credentials() -> tuple[str, str]:
    key_id = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "/+") for _ in range(40))
    text = f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    return "deploy/aws-credentials.ini", text


def _private_key() -> tuple[str, str]:
    generated = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return "deploy/tls/server.key", generated.stdout


KEYS: dict[str, tuple[Callable[[], tuple[str, str]], str]] = {
    "aws": (_aws_credentials, "AWS Access Key"),
    "private key": (_private_key, "Private Key"),
}


def test_the_repository_passes() -> None:
    result = _scan(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_baselined_finding_was_reviewed_as_not_a_secret() -> None:
    # A finding labelled a real secret (or not labelled at all) must be removed, not baselined.
    results = json.loads((REPO / BASELINE).read_text())["results"]
    unreviewed = [
        f"{path}:{finding['line_number']} {finding['type']}"
        for path, findings in results.items()
        for finding in findings
        if finding.get("is_secret") is not False
    ]
    assert not unreviewed


def test_a_repository_without_keys_passes(scratch_repo: Path) -> None:
    result = _scan(scratch_repo)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("tracked", [True, False], ids=["committed", "new file"])
@pytest.mark.parametrize("kind", sorted(KEYS))
def test_a_new_key_fails_the_scan(scratch_repo: Path, kind: str, tracked: bool) -> None:
    make_key, detector = KEYS[kind]
    path, text = make_key()
    (scratch_repo / path).parent.mkdir(parents=True, exist_ok=True)
    (scratch_repo / path).write_text(text)
    if tracked:
        _git(scratch_repo, "add", path)
    result = _scan(scratch_repo)
    assert result.returncode != 0, result.stdout + result.stderr
    assert detector in result.stderr and path in result.stderr
