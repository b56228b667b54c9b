"""Tenant disk quotas: the root helper, its volume binds, and the proxy rules around them.

Real loop-mounted ext4 images, a real helper process, real hardened containers through the
socket proxy.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import requests

from fta.runtime import (
    ContainerRuntimeError,
    ContainerSpec,
    DockerJobRunner,
    StorageUnavailable,
    TenantDiskUse,
)
from fta.runtime.spec import LABEL_INSTANCE, LABEL_MANAGED, LABEL_TENANT
from fta.tenantdisk.client import TenantDiskClient, TenantDiskUnavailable
from fta.tenantdisk.helper import mounted_device
from tests.support.docker_resources import TEST_INSTANCE, DockerResources, random_tenant_id
from tests.support.socket_proxy import (
    API_VERSION,
    TEST_DISK_BYTES,
    StandinWorld,
    http_url,
    spec_with,
)
from tests.support.tenant_disks import TEST_DISK_ROOT, TenantDiskHelper, running_tenant_disk_helper

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

MIB = 1 << 20
# Writes MiB after MiB until refused, then prints why and how much landed on the disk.
FILL = (
    "dd if=/dev/zero of=/data/fill bs=1M count={mib} 2>&1"
    " | grep -E -o 'No space left on device|Permission denied' || echo none;"
    " stat -c 'written %s' /data/fill"
)
# Total size of the file system mounted on /data.
DISK_SIZE = "stat -f -c 'size %b %S' /data"


def run_to_end(runner: DockerJobRunner, spec: ContainerSpec) -> list[str]:
    container_id = runner.create(spec)
    try:
        runner.start(container_id)
        lines = list(runner.follow_logs(container_id))
        runner.wait(container_id, 120)
    finally:
        runner.remove(container_id)
    return lines


def shell_in(template: ContainerSpec, script: str) -> ContainerSpec:
    return spec_with(template, command=["sh", "-c", script])


def disk_size(lines: list[str]) -> int:
    _, blocks, block_size = next(line for line in lines if line.startswith("size ")).split()
    return int(blocks) * int(block_size)


def blocks_used(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def test_a_tenant_cannot_write_past_its_disk(
    proxied_job_runner: DockerJobRunner, proxied_tenant: ContainerSpec
) -> None:
    tenant = proxied_tenant.tenant_id
    lines = run_to_end(proxied_job_runner, shell_in(proxied_tenant, FILL.format(mib=200)))
    assert lines[0] == "No space left on device", lines
    written = int(lines[-1].removeprefix("written "))
    assert 0.5 * TEST_DISK_BYTES < written <= TEST_DISK_BYTES
    # What the host's disk holds for the tenant never exceeds its size, however hard it writes.
    image = Path(TEST_DISK_ROOT, "images", f"{tenant}.img")
    assert os.stat(image).st_size == TEST_DISK_BYTES
    assert blocks_used(image) <= TEST_DISK_BYTES


def test_data_survives_remount_and_grows_with_the_plan(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    tenant_disk_helper: TenantDiskHelper,
) -> None:
    tenant = proxied_tenant.tenant_id
    mount = Path(TEST_DISK_ROOT, "mounts", tenant)
    run_to_end(proxied_job_runner, shell_in(proxied_tenant, "echo trade history > /data/kept"))

    # A reboot, as far as the disk is concerned: the file system is no longer mounted.
    subprocess.run(["umount", str(mount)], check=True)
    assert mounted_device(str(mount)) is None
    assert not any(mount.iterdir())
    bigger = 3 * TEST_DISK_BYTES
    proxied_job_runner.ensure_tenant_volume(tenant, bigger)
    assert mounted_device(str(mount)) is not None

    lines = run_to_end(proxied_job_runner, shell_in(proxied_tenant, f"cat /data/kept; {DISK_SIZE}"))
    assert lines[0] == "trade history"
    assert 2 * TEST_DISK_BYTES < disk_size(lines) <= bigger

    # A smaller plan never shrinks a disk (that would destroy data): the size stays.
    client = TenantDiskClient(tenant_disk_helper.socket, tenant_disk_helper.root)
    assert client.ensure(tenant, TEST_DISK_BYTES).size_bytes == bigger


def test_a_disks_usage_counts_what_its_jobs_wrote(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    tenant_disk_helper: TenantDiskHelper,
) -> None:
    tenant = proxied_tenant.tenant_id

    def measured() -> TenantDiskUse:
        return next(d for d in proxied_job_runner.tenant_disk_usage() if d.tenant_id == tenant)

    before = measured()
    written = run_to_end(
        proxied_job_runner,
        shell_in(
            proxied_tenant,
            f"dd if=/dev/zero of=/data/ballast bs=1M count=8 conv=fsync; {DISK_SIZE}",
        ),
    )
    after = measured()
    # The size is the file system's as the job sees it; the growth is the file's, to a block.
    assert before.size_bytes == after.size_bytes == disk_size(written)
    assert 8 * MIB <= after.used_bytes - before.used_bytes <= 8 * MIB + 64 * 1024

    # Unmounted (a boot race), the disk is measured from its file system's header: its
    # metadata counts as used then, its files still do.
    subprocess.run(["umount", str(Path(TEST_DISK_ROOT, "mounts", tenant))], check=True)
    unmounted = measured()
    assert after.size_bytes <= unmounted.size_bytes <= TEST_DISK_BYTES
    assert after.used_bytes <= unmounted.used_bytes < unmounted.size_bytes


def test_an_unmounted_disk_is_not_writable_through_its_mount_point(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
) -> None:
    """Should a container start while the disk is not mounted (a boot race), it sees an empty
    root-owned directory: nothing it writes lands on the host's own disk."""
    tenant = proxied_tenant.tenant_id
    mount = Path(TEST_DISK_ROOT, "mounts", tenant)
    subprocess.run(["umount", str(mount)], check=True)
    lines = run_to_end(proxied_job_runner, shell_in(proxied_tenant, FILL.format(mib=4)))
    assert lines[0] == "Permission denied", lines
    assert not any(mount.iterdir())


def test_a_restarted_helper_mounts_every_disk_again() -> None:
    root = f"/tmp/fta-test-disks-{random_tenant_id()}"
    tenants = [random_tenant_id() for _ in range(2)]
    with running_tenant_disk_helper(root) as helper:
        client = TenantDiskClient(helper.socket, root)
        for tenant in tenants:
            path = client.ensure(tenant, 16 * MIB).path
            Path(path, "state").write_text(tenant)
        for mount in helper.mounts():
            subprocess.run(["umount", str(mount)], check=True)
        helper.process.terminate()
        helper.process.wait(timeout=10)
        # A new helper, as after a reboot: its start-up mounts every image again.
        process = subprocess.Popen(
            [sys.executable, "-m", "fta.tenantdisk.helper", "--root", root, "--socket",
             f"{root}/run/again.sock", "--client-uid", "0"]
        )  # fmt: skip
        try:
            _wait_for(Path(f"{root}/run/again.sock"), process)
            for tenant in tenants:
                assert Path(root, "mounts", tenant, "state").read_text() == tenant
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if path.exists():
            return
        assert process.poll() is None, "the helper exited"
        time.sleep(0.1)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"action": "ensure", "tenant": "../etc", "size_bytes": 33554432}', "not a tenant id"),
        (b'{"action": "ensure", "tenant": "abc", "size_bytes": 1024}', "at least"),
        (b'{"action": "ensure", "tenant": "abc", "size_bytes": 1e18}', "integer"),
        (b'{"action": "ensure", "tenant": "abc", "size_bytes": 1099511627776000}', "limit"),
        (
            b'{"action": "mount", "tenant": "abc", "size_bytes": 33554432, "device": "/"}',
            "expected",
        ),
        (b"not json", "JSON"),
        (b"[1, 2]", "object"),
    ],
)
def test_the_helper_refuses_anything_but_a_well_formed_ensure(
    tenant_disk_helper: TenantDiskHelper, line: bytes, reason: str
) -> None:
    before = sorted(Path(TEST_DISK_ROOT, "images").iterdir())
    answer = _ask(tenant_disk_helper.socket, line + b"\n")
    assert answer["ok"] is False and reason in answer["error"], answer
    assert sorted(Path(TEST_DISK_ROOT, "images").iterdir()) == before


def test_the_helper_answers_only_its_client_uid(tenant_disk_helper: TenantDiskHelper) -> None:
    request = json.dumps({"action": "ensure", "tenant": random_tenant_id(), "size_bytes": 16 * MIB})
    # The helper refuses a stranger as soon as it connects, without reading: the request may
    # find the connection closed already, and the refusal is read all the same.
    code = (
        "import os, socket, sys; os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        "try: s.sendall(sys.argv[2].encode() + b'\\n')\n"
        "except BrokenPipeError: pass\n"
        "print(s.makefile().readline())"
    )
    # The socket is the client's alone (0600): another uid cannot even connect to it...
    denied = subprocess.run(
        [sys.executable, "-c", code, tenant_disk_helper.socket, request],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "PermissionError" in denied.stderr, denied
    # ...and were the file mode loosened, the helper checks the peer's uid itself.
    os.chmod(tenant_disk_helper.socket, 0o666)  # noqa: S103 - put back below
    try:
        refused = subprocess.run(
            [sys.executable, "-c", code, tenant_disk_helper.socket, request],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    finally:
        os.chmod(tenant_disk_helper.socket, 0o600)
    assert json.loads(refused.stdout) == {"ok": False, "error": "not allowed"}, refused


def test_the_worker_reports_an_unreachable_helper(standin_world: StandinWorld) -> None:
    settings = standin_world.settings().model_copy(
        update={"tenant_disk_socket": f"{TEST_DISK_ROOT}/run/missing.sock"}
    )
    runner = DockerJobRunner(settings)
    try:
        with pytest.raises(StorageUnavailable, match="unreachable"):
            runner.ensure_tenant_volume(random_tenant_id(), TEST_DISK_BYTES)
    finally:
        runner.close()
    with pytest.raises(TenantDiskUnavailable):
        TenantDiskClient(f"{TEST_DISK_ROOT}/run/missing.sock", TEST_DISK_ROOT).ensure(
            random_tenant_id(), TEST_DISK_BYTES
        )


@pytest.mark.parametrize(
    "options",
    [
        {"type": "none", "o": "bind", "device": "/"},
        {"type": "none", "o": "bind", "device": "/var/run"},
        {"type": "none", "o": "bind", "device": f"{TEST_DISK_ROOT}/mounts/OTHER"},
        {"type": "none", "o": "bind", "device": f"{TEST_DISK_ROOT}/images"},
        {"type": "none", "o": "bind", "device": f"{TEST_DISK_ROOT}/mounts/TENANT/../x"},
        {"type": "tmpfs", "o": "size=10g", "device": "tmpfs"},
        {"type": "ext4", "o": "loop", "device": f"{TEST_DISK_ROOT}/images/TENANT.img"},
        {"type": "none", "o": "bind,rw", "device": f"{TEST_DISK_ROOT}/mounts/TENANT"},
        None,
    ],
)
def test_the_proxy_lets_a_tenant_volume_bind_only_its_own_disk(
    standin_world: StandinWorld,
    docker_resources: DockerResources,
    options: dict[str, str] | None,
) -> None:
    tenant, other = random_tenant_id(), random_tenant_id()
    name = f"fta-data-{tenant}"
    docker_resources.add_volume(name)
    if options is not None:
        options = {
            key: value.replace("OTHER", other).replace("TENANT", tenant)
            for key, value in options.items()
        }
    labels = {LABEL_INSTANCE: TEST_INSTANCE, LABEL_MANAGED: "1", LABEL_TENANT: tenant}
    body = {"Name": name, "Driver": "local", "DriverOpts": options, "Labels": labels}
    url = f"{http_url(standin_world.proxy_url)}/v{API_VERSION}/volumes/create"
    assert requests.post(url, json=body, timeout=10).status_code == 403
    # The exact form the worker sends passes, and a duplicated key does not.
    good = {"type": "none", "o": "bind", "device": f"{TEST_DISK_ROOT}/mounts/{tenant}"}
    raw = json.dumps({"Name": name, "Driver": "local", "DriverOpts": good, "Labels": labels})
    twice = raw[:-1] + f', "name": "fta-data-{other}"}}'
    headers = {"Content-Type": "application/json"}
    assert requests.post(url, data=twice, headers=headers, timeout=10).status_code == 403
    assert requests.post(url, data=raw, headers=headers, timeout=10).status_code == 201


def test_a_job_container_mounts_the_tenant_disk(
    proxied_job_runner: DockerJobRunner, proxied_tenant: ContainerSpec
) -> None:
    lines = run_to_end(proxied_job_runner, shell_in(proxied_tenant, DISK_SIZE))
    assert 0.5 * TEST_DISK_BYTES < disk_size(lines) <= TEST_DISK_BYTES


def _ask(socket_path: str, line: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(30)
        connection.connect(socket_path)
        connection.sendall(line)
        answer: dict[str, object] = json.loads(connection.makefile("rb").readline())
    return answer


# --- removal: an erased account's disk ----------------------------------------------------


def test_a_removed_disk_is_gone_for_good(tenant_disk_helper: TenantDiskHelper) -> None:
    client = TenantDiskClient(tenant_disk_helper.socket, tenant_disk_helper.root)
    tenant = random_tenant_id()
    mount = Path(TEST_DISK_ROOT, "mounts", tenant)
    image = Path(TEST_DISK_ROOT, "images", f"{tenant}.img")
    Path(client.ensure(tenant, 16 * MIB).path, "trades").write_text("history")
    assert client.remove(tenant) is True
    assert not image.exists() and not mount.exists()
    assert mounted_device(str(mount)) is None
    # Removing again is harmless; a later ensure makes a new, empty disk.
    assert client.remove(tenant) is False
    assert not any(Path(client.ensure(tenant, 16 * MIB).path).glob("trades"))
    assert client.remove(tenant) is True


@pytest.mark.parametrize(
    ("request_body", "reason"),
    [
        ({"action": "remove", "tenant": "../TENANT"}, "not a tenant id"),
        ({"action": "remove", "tenant": "TENANT/../x"}, "not a tenant id"),
        ({"action": "remove", "tenant": ["TENANT"]}, "string"),
        ({"action": "remove", "tenant": "TENANT", "size_bytes": 33554432}, "expected"),
        ({"action": "remove", "tenant": "TENANT", "path": "/"}, "expected"),
        ({"action": "remove", "tenant": "TENANT", "device": "/dev/loop0"}, "expected"),
        ({"action": "remove"}, "expected"),
        ({"action": "usage", "tenant": "TENANT"}, "expected"),
        ({"action": "delete", "tenant": "TENANT"}, "expected"),
        ({"action": "umount", "tenant": "TENANT"}, "expected"),
    ],
)
def test_the_helper_refuses_anything_but_a_well_formed_remove(
    tenant_disk_helper: TenantDiskHelper, request_body: dict[str, object], reason: str
) -> None:
    tenant = random_tenant_id()
    client = TenantDiskClient(tenant_disk_helper.socket, tenant_disk_helper.root)
    path = client.ensure(tenant, 16 * MIB).path
    try:
        line = json.dumps(request_body).replace("TENANT", tenant).encode()
        answer = _ask(tenant_disk_helper.socket, line + b"\n")
        assert answer["ok"] is False and reason in str(answer["error"]), answer
        # Nothing was unmounted or deleted.
        assert mounted_device(path) is not None
        assert Path(TEST_DISK_ROOT, "images", f"{tenant}.img").exists()
    finally:
        client.remove(tenant)


def test_a_volume_in_use_stays_and_an_idle_one_goes_with_its_disk(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
) -> None:
    tenant = proxied_tenant.tenant_id
    image = Path(TEST_DISK_ROOT, "images", f"{tenant}.img")
    name = f"fta-data-{tenant}"
    busy = proxied_job_runner.create(shell_in(proxied_tenant, "echo kept > /data/f; sleep 60"))
    try:
        proxied_job_runner.start(busy)
        # The engine refuses to remove a volume a container uses: the disk stays too.
        with pytest.raises(ContainerRuntimeError, match="not removed"):
            proxied_job_runner.remove_tenant_volume(tenant)
        assert docker_resources.client.volumes.get(name).name == name
        assert image.exists()
    finally:
        proxied_job_runner.remove(busy)
    proxied_job_runner.remove_tenant_volume(tenant)
    with pytest.raises(docker.errors.NotFound):
        docker_resources.client.volumes.get(name)
    assert not image.exists()
    assert mounted_device(str(Path(TEST_DISK_ROOT, "mounts", tenant))) is None
    proxied_job_runner.remove_tenant_volume(tenant)  # nothing left: a no-op
