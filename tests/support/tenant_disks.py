"""The root tenant disk helper, run for the test session as it runs on a host.

Registered as a pytest plugin, this module gives the session fixture `tenant_disk_helper`:
the helper (fta.tenantdisk.helper) as a root subprocess with its own root directory and
socket, both exported as FTA_TENANT_DISK_ROOT / FTA_TENANT_DISK_SOCKET. Afterwards it stops
the helper, unmounts every disk it mounted and removes the directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from fta.tenantdisk.helper import mounted_device
from tests.support.docker_resources import RUN_ID

# Plain characters only: the socket proxy splices the root into a regex.
TEST_DISK_ROOT = f"/tmp/fta-test-disks-{RUN_ID}"


@dataclass(frozen=True)
class TenantDiskHelper:
    root: str
    socket: str
    process: subprocess.Popen[bytes]

    def mounts(self) -> list[Path]:
        return [p for p in Path(self.root, "mounts").glob("*") if mounted_device(str(p))]


@contextmanager
def running_tenant_disk_helper(root: str) -> Iterator[TenantDiskHelper]:
    socket_path = f"{root}/run/helper.sock"
    log = open(f"{root}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "fta.tenantdisk.helper", "--root", root, "--socket",
         socket_path, "--client-uid", str(os.getuid())],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    helper = TenantDiskHelper(root, socket_path, process)
    try:
        deadline = time.monotonic() + 20
        while not Path(socket_path).exists():
            if process.poll() is not None or time.monotonic() > deadline:
                output = Path(log.name).read_text()
                raise RuntimeError(f"tenant disk helper did not start: {output}")
            time.sleep(0.1)
        yield helper
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        unmount_all(root)
        shutil.rmtree(root, ignore_errors=True)
        Path(log.name).unlink(missing_ok=True)


def unmount_all(root: str) -> None:
    for mount in Path(root, "mounts").glob("*"):
        if mounted_device(str(mount)):
            done = subprocess.run(["umount", str(mount)], check=False, timeout=60)
            if done.returncode != 0:  # still in use: detach it now, free it when unused
                subprocess.run(["umount", "-l", str(mount)], check=False, timeout=60)


@pytest.fixture(scope="session")
def tenant_disk_helper() -> Iterator[TenantDiskHelper]:
    with running_tenant_disk_helper(TEST_DISK_ROOT) as helper:
        os.environ.update(FTA_TENANT_DISK_ROOT=helper.root, FTA_TENANT_DISK_SOCKET=helper.socket)
        yield helper
