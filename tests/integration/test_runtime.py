"""DockerJobRunner against the real engine, through the socket proxy."""

from __future__ import annotations

import io
import ipaddress
import time
from datetime import UTC, datetime

import pytest
from docker.errors import APIError

from fta.runtime import (
    ContainerRuntimeError,
    ContainerSpec,
    DockerJobRunner,
    HardeningError,
    JobTimeout,
    Limits,
    ResourceMismatch,
    read_tenant_usage,
)
from fta.runtime.docker_runner import MAX_OUTPUT_LINE_BYTES
from fta.runtime.network import network_options, tenant_subnet
from fta.runtime.spec import LABEL_INSTANCE, LABEL_MANAGED, PYTHON_ENV_TARGET
from fta.settings import Settings
from tests.support.docker_resources import (
    BASE_IMAGE,
    TEST_INSTANCE,
    DockerResources,
    random_tenant_id,
)
from tests.support.socket_proxy import (
    STANDIN_GATEWAY,
    TEST_BRIDGE_PREFIX,
    TEST_CGROUP_ROOT,
    TEST_DISK_BYTES,
    StandinWorld,
    spec_with,
)
from tests.support.tenant_disks import TEST_DISK_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


def run_to_end(runner: DockerJobRunner, spec: ContainerSpec, timeout_s: float = 60) -> list[str]:
    container_id = runner.create(spec)
    runner.start(container_id)
    lines = list(runner.follow_logs(container_id))
    runner.wait(container_id, timeout_s)
    runner.remove(container_id)
    return lines


def test_tenant_network_is_internal_fixed_and_idempotent(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
    standin_world: StandinWorld,
) -> None:
    api = docker_resources.client.api
    tenant_id = proxied_tenant.tenant_id
    network = api.inspect_network(proxied_tenant.network)
    assert network["Internal"] is True
    assert network["Options"] == network_options(f"{TEST_BRIDGE_PREFIX}{tenant_id}")
    (pool,) = network["IPAM"]["Config"]
    settings = standin_world.settings()
    index = _subnet_index(pool["Subnet"], settings)
    layout = tenant_subnet(settings.tenant_subnet_pool, settings.tenant_subnet_prefix, index)
    assert pool == {
        "Subnet": str(layout.subnet),
        "IPRange": str(layout.dynamic_range),
        "Gateway": str(layout.bridge_ip),
    }
    gateway_ip = str(layout.gateway_ip)
    assert proxied_tenant.extra_hosts == {"market-data": gateway_ip}
    assert proxied_tenant.dns == [str(layout.dns_ip)]

    gateway = api.inspect_container(STANDIN_GATEWAY)
    attached = gateway["NetworkSettings"]["Networks"][proxied_tenant.network]
    assert attached["IPAMConfig"]["IPv4Address"] == gateway_ip
    assert attached["IPAddress"] == gateway_ip

    again = proxied_job_runner.ensure_tenant_network(tenant_id, index)
    assert again.name == proxied_tenant.network
    assert again.gateway_ip == gateway_ip
    assert proxied_job_runner.ensure_tenant_volume(tenant_id, TEST_DISK_BYTES) == (
        f"fta-data-{tenant_id}"
    )
    volume = api.inspect_volume(f"fta-data-{tenant_id}")
    assert volume["Driver"] == "local"
    disk = f"{TEST_DISK_ROOT}/mounts/{tenant_id}"
    assert volume["Options"] == {"type": "none", "o": "bind", "device": disk}

    with pytest.raises(ResourceMismatch):
        proxied_job_runner.ensure_tenant_network(tenant_id, (index + 1) % 2048)


def _subnet_index(subnet: str, settings: Settings) -> int:
    pool = ipaddress.ip_network(settings.tenant_subnet_pool)
    network = ipaddress.ip_network(subnet)
    size: int = 2 ** (32 - settings.tenant_subnet_prefix)
    return (int(network.network_address) - int(pool.network_address)) // size


def test_lookalike_network_and_volume_are_never_reused(
    proxied_job_runner: DockerJobRunner, docker_resources: DockerResources
) -> None:
    api = docker_resources.client.api
    # Made behind fta's back, even with this installation's labels: a network with Internet
    # access, a volume with driver options. The proxy lets them through (their labels are
    # right); the worker's verification refuses them.
    tenant_id = random_tenant_id()
    labels = {**docker_resources.labels, LABEL_INSTANCE: TEST_INSTANCE, LABEL_MANAGED: "1"}
    docker_resources.add_network(f"fta-client-{tenant_id}")
    api.create_network(f"fta-client-{tenant_id}", driver="bridge", labels=labels)
    docker_resources.add_volume(f"fta-data-{tenant_id}")
    api.create_volume(
        f"fta-data-{tenant_id}",
        driver="local",
        driver_opts={"type": "tmpfs", "device": "tmpfs"},
        labels=labels,
    )
    with pytest.raises(ResourceMismatch, match="Internal"):
        proxied_job_runner.ensure_tenant_network(tenant_id, 0)
    with pytest.raises(ResourceMismatch, match="Options"):
        proxied_job_runner.ensure_tenant_volume(tenant_id, TEST_DISK_BYTES)
    # Without them, the proxy does not even let the worker look at such objects.
    other = random_tenant_id()
    docker_resources.add_network(f"fta-client-{other}")
    api.create_network(f"fta-client-{other}", driver="bridge", labels=docker_resources.labels)
    with pytest.raises(APIError) as refused:
        proxied_job_runner.ensure_tenant_network(other, 0)
    assert refused.value.status_code == 403

    shared = f"fta-cache-{docker_resources.scope}"
    docker_resources.add_volume(shared)
    assert proxied_job_runner.ensure_volume(shared) == shared
    assert not api.inspect_volume(shared)["Options"]


def test_a_volume_made_again_is_told_from_the_one_before(
    proxied_job_runner: DockerJobRunner, docker_resources: DockerResources
) -> None:
    """The candle cache's rows hold for the volume they were filled into: the engine's
    creation time tells a volume made again, empty, from the one before."""
    name = docker_resources.add_volume(f"fta-cache-made-{docker_resources.scope}")
    # The engine keeps whole seconds.
    before = datetime.now(UTC).replace(microsecond=0)
    assert proxied_job_runner.ensure_volume(name) == name
    created_at = proxied_job_runner.volume_created_at(name)
    assert created_at.tzinfo is UTC and before <= created_at <= datetime.now(UTC)
    docker_resources.client.api.remove_volume(name)
    with pytest.raises(ContainerRuntimeError, match="not found"):
        proxied_job_runner.volume_created_at(name)


def test_an_image_volume_fails_verification_and_the_container_is_removed(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
) -> None:
    client = docker_resources.client
    tag = docker_resources.add_image(f"fta-test/image-volume:{docker_resources.scope}")
    dockerfile = f"FROM {BASE_IMAGE}\nVOLUME /var/lib/anything\n".encode()
    client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    with pytest.raises(HardeningError) as failed:
        proxied_job_runner.create(spec_with(proxied_tenant, image=tag))
    assert any(m.startswith("Mounts") for m in failed.value.mismatches)
    selector = {"label": [f"fta.test.scope={docker_resources.scope}", "fta.managed=1"]}
    assert client.api.containers(all=True, filters=selector) == []


def test_the_python_env_is_the_images_own_read_only_and_one_volume_per_image(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
    standin_world: StandinWorld,
) -> None:
    client = docker_resources.client
    tag = docker_resources.add_image(f"fta-test/python-env:{docker_resources.scope}")
    built: list[str] = []

    def build(marker: str) -> str:
        marked = f"mkdir {PYTHON_ENV_TARGET} && echo {marker} >{PYTHON_ENV_TARGET}/m"
        dockerfile = f"FROM {BASE_IMAGE}\nRUN {marked}\n"
        image, _ = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
        built.append(str(image.id))
        return str(image.id)

    def env_volumes() -> set[str]:
        selector = {"label": [f"fta.test.scope={docker_resources.scope}"]}
        found = client.api.volumes(filters=selector).get("Volumes") or []
        return {v["Name"] for v in found if v["Name"].startswith("fta-pyenv-")}

    def read_env(spec: ContainerSpec) -> list[str]:
        path = f"{PYTHON_ENV_TARGET}/m"
        # The shell's own complaint goes to /dev/null: stderr and stdout interleave unordered.
        script = f"stat -c %u {path}; cat {path}; (echo x >{path}) 2>/dev/null || echo refused"
        return run_to_end(proxied_job_runner, spec_with(spec, command=["sh", "-c", script]))

    template = spec_with(proxied_tenant, image=tag)
    try:
        first_id = build("first")
        spec = proxied_job_runner.with_python_env(template)
        assert spec.image_id == first_id
        env = spec.mounts[-1]
        assert spec.mounts[:-1] == template.mounts
        assert (env.target, env.read_only) == (PYTHON_ENV_TARGET, True)
        # Filled by the engine from the image (root's files), never writable by a job.
        lines = read_env(spec)
        assert lines[:2] == ["0", "first"] and lines[-1] == "refused", lines
        made = env_volumes()
        assert len(made) == 2 and env.volume in made  # its content and its record
        # Another worker finds the recorded volume and copies nothing.
        other = DockerJobRunner(standin_world.settings(), extra_labels=docker_resources.labels)
        try:
            assert other.with_python_env(template) == spec
        finally:
            other.close()
        assert env_volumes() == made

        # An updated image gets a volume of its own; a spec pinned to the old one is refused.
        second_id = build("second")
        updated = proxied_job_runner.with_python_env(template)
        assert updated.image_id == second_id and updated.mounts[-1].volume not in made
        assert read_env(updated)[:2] == ["0", "second"]
        with pytest.raises(HardeningError) as refused:
            proxied_job_runner.create(spec)
        assert [m for m in refused.value.mismatches if m.startswith("Image:")]
    finally:
        for image_id in built[:-1]:  # the last one goes with its tag
            client.images.remove(image_id, force=True)


def test_wait_times_out_and_kill_ends_the_job(
    proxied_job_runner: DockerJobRunner, proxied_tenant: ContainerSpec
) -> None:
    runner = proxied_job_runner
    container_id = runner.create(spec_with(proxied_tenant, command=["sleep", "60"]))
    runner.start(container_id)
    started = time.monotonic()
    with pytest.raises(JobTimeout):
        runner.wait(container_id, timeout_s=2)
    assert time.monotonic() - started < 10
    runner.kill(container_id)
    status = runner.wait(container_id, timeout_s=30)
    assert status.exit_code == 137
    assert status.oom_killed is False
    runner.remove(container_id)


def test_out_of_memory_is_reported(
    proxied_job_runner: DockerJobRunner, proxied_tenant: ContainerSpec
) -> None:
    runner = proxied_job_runner
    small = Limits(nano_cpus=1_000_000_000, memory_bytes=48 << 20, pids=32, tmpfs_bytes=8 << 20)
    hog = "x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo ${#x}"
    container_id = runner.create(
        spec_with(proxied_tenant, limits=small, command=["bash", "-c", hog])
    )
    runner.start(container_id)
    status = runner.wait(container_id, timeout_s=60)
    runner.remove(container_id)
    assert status.oom_killed is True
    assert status.exit_code == 137


def test_usage_is_read_per_job_and_stays_in_the_tenant_cgroup(
    proxied_job_runner: DockerJobRunner,
    proxied_tenant: ContainerSpec,
    docker_resources: DockerResources,
) -> None:
    runner = proxied_job_runner
    one_cpu = Limits(nano_cpus=1_000_000_000, memory_bytes=64 << 20, pids=32, tmpfs_bytes=8 << 20)
    burn = "timeout 1.5 bash -c 'while :; do :; done'; echo burnt; sleep 60"
    spec = spec_with(proxied_tenant, limits=one_cpu, command=["bash", "-c", burn])
    container_id = runner.create(spec)
    runner.start(container_id)
    logs = runner.follow_logs(container_id)
    assert next(logs) == "burnt"
    usage = runner.read_usage(container_id)
    assert 1.0 < usage.cpu_seconds < 3.0
    assert usage.memory_max_bytes > 0
    runner.kill(container_id)
    runner.wait(container_id, timeout_s=30)
    runner.remove(container_id)

    info = docker_resources.client.info()
    tenant = read_tenant_usage(
        proxied_tenant.tenant_id,
        version=2 if info.get("CgroupVersion") == "2" else 1,
        driver=info["CgroupDriver"],
        root=TEST_CGROUP_ROOT,
    )
    # The parent keeps the CPU time of children that are gone.
    assert tenant.cpu_seconds >= usage.cpu_seconds - 0.1
    assert tenant.memory_max_bytes > 0


def test_long_lines_come_in_pieces(
    proxied_job_runner: DockerJobRunner, proxied_tenant: ContainerSpec
) -> None:
    script = f"head -c {MAX_OUTPUT_LINE_BYTES + 100} /dev/zero | tr '\\0' a; echo; echo end"
    lines = run_to_end(
        proxied_job_runner, spec_with(proxied_tenant, command=["bash", "-c", script])
    )
    assert [len(line) for line in lines] == [MAX_OUTPUT_LINE_BYTES, 100, 3]
    assert lines[-1] == "end"
    assert set(lines[0] + lines[1]) == {"a"}


def test_managed_containers_are_listed_from_their_labels(
    proxied_job_runner: DockerJobRunner, proxied_tenant: ContainerSpec
) -> None:
    runner = proxied_job_runner
    job = runner.create(spec_with(proxied_tenant, owner_id="41"))
    bot = runner.create(spec_with(proxied_tenant, owner_kind="bot", owner_id="42"))
    listed = {c.id: c for c in runner.list_managed()}
    assert set(listed) == {job, bot}
    assert (listed[job].tenant, listed[job].owner_kind, listed[job].owner_id) == (
        proxied_tenant.tenant_id,
        "job",
        "41",
    )
    assert (listed[bot].owner_kind, listed[bot].owner_id, listed[bot].state) == (
        "bot",
        "42",
        "created",
    )
