"""deploy/install.sh into a throw-away root: the Docker daemon's settings, the systemd units
of the firewall, the tenant disk helper and the stack, and .env; a second run changes
nothing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from tests.support.stack import REPO, clean_environment

UNITS = ("fta-firewall.service", "fta-tenant-disk.service", "fta.service")


def install(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "deploy" / "install.sh"), "--root", str(root)],
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "host"
    first = install(root)
    assert first.returncode == 0, first.stdout + first.stderr
    written = {line.split()[1] for line in first.stdout.splitlines() if line.startswith("wrote")}
    assert written == {
        "/etc/docker/daemon.json",
        *(f"/etc/systemd/system/{unit}" for unit in UNITS),
        f"{REPO}/.env",
    }
    before = snapshot(root)
    second = install(root)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.splitlines()[-1] == "install: nothing changed"
    assert not [line for line in second.stdout.splitlines() if line.startswith("wrote")]
    assert snapshot(root) == before


def test_the_daemon_settings_are_enforced_and_the_operators_own_kept(tmp_path: Path) -> None:
    root = tmp_path / "host"
    daemon = root / "etc" / "docker" / "daemon.json"
    daemon.parent.mkdir(parents=True)
    daemon.write_text(json.dumps({"debug": True, "icc": True, "live-restore": False}))
    done = install(root, FTA_DOCKER_ADDRESS_POOL="10.240.0.0/12")
    assert done.returncode == 0, done.stderr
    settings = json.loads(daemon.read_text())
    assert settings["debug"] is True  # not ours: kept
    assert settings["icc"] is False and settings["live-restore"] is True
    assert settings["no-new-privileges"] is True and settings["userland-proxy"] is False
    assert settings["default-address-pools"] == [{"base": "10.240.0.0/12", "size": 24}]
    assert settings["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert settings["exec-opts"] == ["native.cgroupdriver=systemd"]


def test_the_units_run_this_checkout_with_the_installations_paths(tmp_path: Path) -> None:
    root = tmp_path / "host"
    done = install(root, FTA_TENANT_DISK_ROOT="/srv/fta/disks", FTA_TENANT_DISK_RUN_DIR="/run/ftad")
    assert done.returncode == 0, done.stderr
    units = {name: (root / "etc/systemd/system" / name).read_text() for name in UNITS}
    helper = units["fta-tenant-disk.service"]
    assert f"PYTHONPATH={REPO}/src" in helper
    assert "--root /srv/fta/disks --socket /run/ftad/helper.sock --client-uid 10001" in helper
    assert "RuntimeDirectory=ftad\n" in helper and "Before=docker.service" in helper
    firewall = units["fta-firewall.service"]
    assert f"ExecStart=/usr/bin/env bash {REPO}/deploy/host-firewall.sh apply" in firewall
    assert "PartOf=docker.service" in firewall and "WantedBy=docker.service" in firewall
    stack = units["fta.service"]
    assert f"ExecStart=/usr/bin/env bash {REPO}/scripts/up.sh" in stack
    assert "Requires=docker.service fta-tenant-disk.service" in stack


def test_env_is_generated_private_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "host"
    assert install(root).returncode == 0
    env_file = Path(f"{root}{REPO}/.env")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    text = env_file.read_text()
    values = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert not [line for line in values if "changeme" in line]
    assert any(line.startswith("FTA_SECRET_KEY=") for line in values)
    env_file.write_text(text + "FTA_SMTP_HOST=smtp.example.com\n")
    edited = env_file.read_text()
    assert install(root).returncode == 0
    assert env_file.read_text() == edited  # the operator's edits and secrets stay


def test_bad_settings_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    root = tmp_path / "host"
    for env in ({"FTA_DOCKER_ADDRESS_POOL": "10.0.0.0/8; rm -rf /"}, {"FTA_TENANT_DISK_ROOT": "x"}):
        refused = install(root, **env)
        assert refused.returncode == 2, refused.stdout
        assert "install:" in refused.stderr
    assert not any(root.rglob("*.json")) and not any(root.rglob("*.service"))
    assert os.listdir(root) == []
