"""Tenant containers run under fta's own seccomp profile (fta.seccomp), whatever the engine's
default: `io_uring`, which Docker's default profile allowed until 25.0, is refused like the
other calls newer Docker blocks, and ordinary Python (threads, subprocesses) still works."""

from __future__ import annotations

import errno
import json

import pytest

from fta.runtime import ContainerSpec, DockerJobRunner
from tests.support.sandbox import APP_IMAGE
from tests.support.socket_proxy import spec_with

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

# x86-64 numbers (the machines that run this suite); each call is made with harmless arguments.
PROBE = """
import ctypes, json, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(number, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    return 0 if result >= 0 else ctypes.get_errno()
found = {
    "io_uring_setup": call(425, 8, 0),
    "io_uring_enter": call(426, -1, 0, 0, 0, 0, 0),
    "io_uring_register": call(427, -1, 0, 0, 0),
    "unshare(CLONE_NEWUSER)": call(272, 0x10000000),
    "clone3": call(435, 0, 0),
    "keyctl": call(250, 0, 0, 0),
    "bpf": call(321, 0, 0, 0),
    "userfaultfd": call(323, 0),
    "perf_event_open": call(298, 0, 0, -1, -1, 0),
    "personality(ADDR_NO_RANDOMIZE)": call(135, 0x0040000),
}
thread = threading.Thread(target=lambda: None)
thread.start()
thread.join()
found["subprocess"] = subprocess.run(["true"], check=False).returncode
print(json.dumps(found))
"""


def test_the_profile_refuses_io_uring_and_kernel_interfaces(
    proxied_job_runner: DockerJobRunner, proxied_tenant: ContainerSpec
) -> None:
    spec = spec_with(proxied_tenant, image=APP_IMAGE, command=["python3", "-c", PROBE])
    container_id = proxied_job_runner.create(spec)
    proxied_job_runner.start(container_id)
    lines = list(proxied_job_runner.follow_logs(container_id))
    assert proxied_job_runner.wait(container_id, 60).exit_code == 0, lines
    proxied_job_runner.remove(container_id)
    found = json.loads(lines[-1])
    assert found.pop("subprocess") == 0
    # clone3 answers ENOSYS so that libc falls back to clone, which the profile can judge.
    assert found.pop("clone3") == errno.ENOSYS
    assert found == dict.fromkeys(found, errno.EPERM)
