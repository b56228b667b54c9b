"""What an operator waits for: a warm `make up`, a restart, a backup and a restore of a host
with 100 accounts (each with its own disk holding a bot's files), and the portal's and the
bots' downtime during an upgrade.

The stack is the one `make up` boots (scripts/up.sh, as tests/e2e/test_stack_up.py runs it),
removed afterwards. Baselines from the same run:
- a backup against a bare copy of the same data: `pg_dump` to a file and `cp --sparse` of
  every disk image, neither frozen, checked nor encrypted;
- a restore against a warm `make up` (a restore ends with one);
- the upgrade's failed seconds against a bare `docker-compose restart portal`.

Run from the repository root, with the images built and no stack running:
    .venv/bin/python -m bench.stack_operations [--tenants 100] [--mib-per-tenant 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
from tests.support.stack import (
    PORTAL,
    REPO,
    Stack,
    clean_environment,
    operator_key,
    running_stack,
)

from fta.tenantdisk.client import TenantDiskClient

MIB = 1 << 20


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(what: str, step: Callable[[], subprocess.CompletedProcess[str] | None]) -> float:
    started = time.monotonic()
    done = step()
    seconds = time.monotonic() - started
    if done is not None and done.returncode != 0:
        raise RuntimeError(f"{what} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    log(f"{what}: {seconds:.1f} s")
    return seconds


def failed_seconds(action: Callable[[], object], period: float = 0.1) -> tuple[float, float]:
    """How long the portal's /healthz failed while `action` ran, and how long it ran."""
    failures = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal failures
        while not done.is_set():
            try:
                ok = httpx.get(f"{PORTAL}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                ok = False
            failures += not ok
            time.sleep(period)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        action()
        # The portal answers again before the action ends; a few more samples for the tail.
        deadline = time.monotonic() + 60
        while httpx.get(f"{PORTAL}/healthz", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the portal did not come back")
            time.sleep(period)
    finally:
        ran = time.monotonic() - started
        done.set()
        watcher.join(timeout=10)
    return failures * period, ran


def sign_up_accounts(count: int) -> list[str]:
    """`count` accounts signed up through the API; their tenant ids."""
    ids = []
    with httpx.Client(base_url=f"{PORTAL}/api/v1", timeout=30) as api:
        for index in range(count):
            body = {
                "email": f"bench-{index}-{secrets.token_hex(3)}@example.com",
                "password": secrets.token_urlsafe(16),
                "display_name": f"Bench {index}",
            }
            answer = api.post("/auth/signup", json=body)
            # nginx lets an address sign up or log in 30 times a minute.
            while answer.status_code == 429:
                time.sleep(2.1)
                answer = api.post("/auth/signup", json=body)
            answer.raise_for_status()
            ids.append(answer.json()["tenant_id"])
    return ids


def fill_disks(stack: Stack, tenants: list[str], mib: int) -> None:
    """Each account's disk, made by the helper as for a first job, holding `mib` MiB of a
    bot's files (random bytes: nothing compresses them away)."""
    client = TenantDiskClient(f"{stack.disks}-run/helper.sock", stack.disks)
    for tenant in tenants:
        disk = client.ensure(tenant, 256 * MIB)
        bots = Path(disk.path, "bots", "bench")
        bots.mkdir(parents=True, exist_ok=True)
        (bots / "tradesv3.dryrun.sqlite").write_bytes(os.urandom(mib * MIB))
        os.chown(bots.parent, 10000, 10000)


def bare_copy(stack: Stack, target: Path) -> subprocess.CompletedProcess[str]:
    target.mkdir()
    script = (
        "set -euo pipefail\n"
        "docker-compose exec -T postgres sh -c "
        "'PGPASSWORD=$POSTGRES_PASSWORD pg_dump -h /tmp -U fta -d fta --format=custom'"
        f" > {target}/db.dump\n"
        f"cp --sparse=always {stack.disks}/images/*.img {target}/\n"
    )
    gid = str(os.stat("/var/run/docker.sock").st_gid)
    return subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env=clean_environment(DOCKER_GID=gid),
        capture_output=True,
        text=True,
        timeout=1800,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--mib-per-tenant", type=int, default=4)
    args = parser.parse_args()
    rows: list[tuple[str, float, float, str]] = []
    work = Path(tempfile.mkdtemp(prefix="fta-bench-ops-"))
    cleanup = ExitStack()
    try:
        started = time.monotonic()
        # Sign-ups from one address, a hundred of them: over the default hourly limit.
        with running_stack(FTA_SIGNUP_MAX_PER_IP="10000") as stack:
            first_up = time.monotonic() - started
            log(f"make up (images built): {first_up:.1f} s")
            restart = timed("make down && make up", lambda: _down_up(stack))
            rows.append(
                (
                    "`make down` then `make up` (warm)",
                    restart,
                    first_up,
                    "first `make up` of the run",
                )
            )

            tenants = sign_up_accounts(args.tenants)
            fill_disks(stack, tenants, args.mib_per_tenant)
            log(f"{len(tenants)} accounts, {args.mib_per_tenant} MiB on each disk")
            key = cleanup.enter_context(operator_key(work / "gnupg"))
            bare = timed("bare copy", lambda: bare_copy(stack, work / "bare"))
            backup_dir = work / "backups"
            backup = timed(
                "deploy/backup.sh",
                lambda: stack.run(
                    "deploy/backup.sh", FTA_BACKUP_KEY=str(key), FTA_BACKUP_DIR=str(backup_dir)
                ),
            )
            rows.append(
                (
                    f"backup, {args.tenants} accounts",
                    backup,
                    bare,
                    "bare `pg_dump` + `cp` of the disks",
                )
            )
            archive = next(backup_dir.glob("fta-backup-*.tar.gpg"))
            size = archive.stat().st_size / MIB

            restart_only, _ = failed_seconds(
                lambda: subprocess.run(
                    ["docker-compose", "restart", "portal"],
                    cwd=REPO,
                    env={
                        **clean_environment(),
                        "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
                    },
                    check=True,
                    capture_output=True,
                    timeout=300,
                )
            )
            # An upgrade that changes the portal's settings recreates its container.
            env_file = REPO / ".env"
            env_file.write_text(env_file.read_text() + "FTA_LOGIN_MAX_FAILURES=6\n")
            upgrade_down, upgrade_ran = failed_seconds(
                lambda: _checked(stack.run("deploy/deploy.sh", "--no-backup"))
            )
            rows.append(
                (
                    "portal's failed seconds, upgrade",
                    upgrade_down,
                    restart_only,
                    "`docker-compose restart portal`",
                )
            )

            stack.empty_host()
            restore = timed(
                "deploy/restore.sh",
                lambda: stack.run("deploy/restore.sh", str(archive), GNUPGHOME=str(work / "gnupg")),
            )
            rows.append(
                (
                    f"restore onto an emptied host, {args.tenants} accounts",
                    restore,
                    restart,
                    "warm `make up`",
                )
            )
    finally:
        cleanup.close()
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs "
        f"({platform.machine()}, Linux {platform.release()}); `{' '.join(sys.argv)}`; "
        f"{args.tenants} accounts of {args.mib_per_tenant} MiB each, backup file {size:.0f} MiB; "
        f"the upgrade ran {upgrade_ran:.0f} s.\n"
    )
    print("| measure | seconds | baseline | baseline's seconds | ratio |")
    print("|---|---|---|---|---|")
    for what, seconds, base, base_name in rows:
        ratio = f"{seconds / base:.2f}" if base else "—"
        print(f"| {what} | {seconds:.1f} | {base_name} | {base:.1f} | {ratio} |")


def _down_up(stack: Stack) -> subprocess.CompletedProcess[str]:
    down = stack.script("down.sh")
    if down.returncode != 0:
        return down
    return stack.script("up.sh")


def _checked(done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"{done.stdout[-2000:]}{done.stderr[-2000:]}")


if __name__ == "__main__":
    main()
