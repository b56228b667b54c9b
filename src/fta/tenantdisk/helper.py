"""The root helper behind tenant disk quotas: three strict actions, `ensure`, `remove` and
`usage`, on a Unix socket.

    python3 -m fta.tenantdisk.helper --root /var/lib/fta/tenant-disks \
        --socket /run/fta-tenant-disk/helper.sock --client-uid 10001

For `ensure(tenant, size)` it makes sure that `<root>/images/<tenant>.img` exists (a sparse
ext4 image, owned inside by the job user, at least `size` bytes: grown online when the plan
grew, never shrunk) and is mounted `nosuid,nodev,noexec` on `<root>/mounts/<tenant>`. For
`remove(tenant)` (the tenant's account is erased) it unmounts that disk and deletes its image
and mount point: the data is gone for good. `usage` tells, for every disk, its size and the
bytes its files take (the operator's console shows them). At start it mounts every image
again, which is what brings tenant data back after a reboot.

It takes no path, device or option from its client, only a tenant id and a size in bounds,
and it answers only root and the one client uid it was given (SO_PEERCRED). The worker keeps
no rights of its own on the host. Standard library only: it runs with the host's python3.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import socketserver
import stat
import struct
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

from fta.tenantdisk.protocol import (
    MAX_LINE_BYTES,
    MIB,
    TENANT_ID_RE,
    DiskUsage,
    EnsureAnswer,
    EnsureRequest,
    ProtocolError,
    RemoveAnswer,
    RemoveRequest,
    UsageAnswer,
    check_root,
    decode_request,
    encode_refusal,
    image_path,
    mount_path,
)

log = logging.getLogger("fta.tenantdisk")

MOUNT_OPTIONS = "loop,nosuid,nodev,noexec"
COMMAND_TIMEOUT_S = 300
REQUEST_TIMEOUT_S = 30


class DiskError(Exception):
    """A disk could not be provided; the message is safe to send to the client."""


class TenantDisks:
    def __init__(self, root: str, *, owner: tuple[int, int], max_bytes: int) -> None:
        self.root = check_root(root)
        self.owner = owner
        self.max_bytes = max_bytes
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._locks_guard = threading.Lock()
        for sub in ("images", "mounts"):
            # Root-only directories: a mount point left unmounted is an empty root-owned
            # directory, where the job user cannot write a byte to the host's disk.
            Path(self.root, sub).mkdir(
                mode=0o700 if sub == "images" else 0o755, parents=True, exist_ok=True
            )

    def ensure(self, request: EnsureRequest) -> EnsureAnswer:
        size = -(-request.size_bytes // MIB) * MIB
        if size > self.max_bytes:
            raise DiskError(f"{size} bytes is over this host's limit of {self.max_bytes}")
        with self._lock(request.tenant_id):
            image = Path(image_path(self.root, request.tenant_id))
            mount = Path(mount_path(self.root, request.tenant_id))
            if not image.exists():
                self._create(image, size)
            mount.mkdir(mode=0o755, exist_ok=True)
            device = mounted_device(str(mount))
            if device is None:
                self._mount(image, mount)
                device = mounted_device(str(mount))
                if device is None:
                    raise DiskError(f"tenant {request.tenant_id}'s disk did not mount")
            if image.stat().st_size < size:
                os.truncate(image, size)
            if filesystem_size(device) < image.stat().st_size:
                self._grow(image, mount, device)
            return EnsureAnswer(path=str(mount), size_bytes=filesystem_size(device))

    def remove(self, request: RemoveRequest) -> RemoveAnswer:
        """Unmounts the tenant's disk and deletes its image and mount point. Refused while a
        container still uses the disk (the unmount fails): nothing is deleted then."""
        with self._lock(request.tenant_id):
            image = Path(image_path(self.root, request.tenant_id))
            mount = Path(mount_path(self.root, request.tenant_id))
            if mounted_device(str(mount)) is not None:
                _run(["umount", str(mount)])
            removed = image.exists()
            image.unlink(missing_ok=True)
            image.with_suffix(".new").unlink(missing_ok=True)
            # Unmounted, the mount point is an empty root-owned directory.
            if mount.exists():
                mount.rmdir()
            if removed:
                log.info("removed tenant %s's disk", request.tenant_id)
            return RemoveAnswer(removed=removed)

    def usage(self) -> UsageAnswer:
        """Every disk's size and the bytes taken on it: from the mounted file system, or from
        the image's own header while it is not mounted."""
        disks = []
        for tenant_id, image in self._images():
            mount = mount_path(self.root, tenant_id)
            try:
                if mounted_device(mount) is not None:
                    stats = os.statvfs(mount)
                    size = stats.f_blocks * stats.f_frsize
                    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
                else:
                    size, used = filesystem_use(str(image))
            except (OSError, subprocess.SubprocessError, KeyError, ValueError) as error:
                # Removed meanwhile, or unreadable: the others are still worth telling.
                log.warning("tenant %s's disk not measured: %s", tenant_id, error)
                continue
            disks.append(DiskUsage(tenant_id=tenant_id, size_bytes=size, used_bytes=used))
        return UsageAnswer(disks=tuple(disks))

    def _images(self) -> list[tuple[str, Path]]:
        """(tenant id, image) of every disk image, in the tenants' order."""
        found = []
        for image in sorted(Path(self.root, "images").glob("*.img")):
            tenant_id = image.name.removesuffix(".img")
            if TENANT_ID_RE.fullmatch(tenant_id):
                found.append((tenant_id, image))
        return found

    def mount_all(self) -> int:
        """Mounts every image not mounted yet (after a reboot); returns how many it mounted."""
        count = 0
        for tenant_id, image in self._images():
            mount = Path(mount_path(self.root, tenant_id))
            with self._lock(tenant_id):
                mount.mkdir(mode=0o755, exist_ok=True)
                if mounted_device(str(mount)) is None:
                    try:
                        self._mount(image, mount)
                        count += 1
                    except DiskError as error:
                        log.error("%s", error)
        return count

    def _lock(self, tenant_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks[tenant_id]

    def _create(self, image: Path, size: int) -> None:
        partial = image.with_suffix(".new")
        partial.unlink(missing_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
        uid, gid = self.owner
        _run(
            ["mkfs.ext4", "-q", "-F", "-m", "0", "-L", f"fta-{image.stem}",
             "-E", f"root_owner={uid}:{gid}", str(partial)]
        )  # fmt: skip
        partial.rename(image)
        log.info("created a %d MiB disk for tenant %s", size // MIB, image.stem)

    def _mount(self, image: Path, mount: Path) -> None:
        _run(["mount", "-t", "ext4", "-o", MOUNT_OPTIONS, str(image), str(mount)])
        # The image's lost+found is root's: nothing in it for the job user.
        log.info("mounted tenant %s's disk", image.stem)

    def _grow(self, image: Path, mount: Path, device: str) -> None:
        """Grows the file system to its image: online when the kernel lets us (it needs
        CAP_SYS_RESOURCE), else unmounted when no container uses it, else at a later ensure."""
        try:
            _run(["losetup", "--set-capacity", device])
            _run(["resize2fs", device])
        except DiskError as online_error:
            try:
                _run(["umount", str(mount)])
            except DiskError:
                log.warning(
                    "tenant %s's disk stays as is while in use: %s", image.stem, online_error
                )
                return
            try:
                _run(["e2fsck", "-f", "-p", str(image)])
                _run(["resize2fs", str(image)])
            finally:
                self._mount(image, mount)
        log.info("grew tenant %s's disk to %d MiB", image.stem, image.stat().st_size // MIB)


def filesystem_size(device: str) -> int:
    """The ext4 file system's own size (block count × block size), mounted or not."""
    fields = _superblock(device)
    return int(fields["Block count"]) * int(fields["Block size"])


def filesystem_use(device: str) -> tuple[int, int]:
    """The unmounted ext4 file system's size and the bytes taken on it, from its header."""
    fields = _superblock(device)
    blocks, block_size = int(fields["Block count"]), int(fields["Block size"])
    return blocks * block_size, (blocks - int(fields["Free blocks"])) * block_size


def _superblock(device: str) -> dict[str, str]:
    result = subprocess.run(  # noqa: S603 - fixed program
        ["dumpe2fs", "-h", device],  # noqa: S607
        check=True, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
    )  # fmt: skip
    return dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)


def mounted_device(mount_point: str) -> str | None:
    """The source (a /dev/loopN) mounted exactly on `mount_point`, from mountinfo."""
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            separator = fields.index("-")
            if fields[4] == mount_point and fields[separator + 1] == "ext4":
                return fields[separator + 2]
    return None


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(  # noqa: S603 - fixed programs, arguments built here from checked ids
            argv, check=True, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
        )
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip().splitlines()
        raise DiskError(
            f"{argv[0]} failed: {detail[-1] if detail else error.returncode}"
        ) from error
    except subprocess.TimeoutExpired as error:
        raise DiskError(f"{argv[0]} took longer than {COMMAND_TIMEOUT_S} s") from error


class _Handler(socketserver.StreamRequestHandler):
    server: HelperServer

    def handle(self) -> None:
        self.connection.settimeout(REQUEST_TIMEOUT_S)
        if not self.server.peer_allowed(self.connection):
            self.wfile.write(encode_refusal("not allowed") + b"\n")
            return
        try:
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
            request = decode_request(line)
            if isinstance(request, EnsureRequest):
                answer = self.server.disks.ensure(request).encode()
            elif isinstance(request, RemoveRequest):
                answer = self.server.disks.remove(request).encode()
            else:
                answer = self.server.disks.usage().encode()
        except (ProtocolError, DiskError) as error:
            answer = encode_refusal(str(error))
        except OSError as error:
            log.exception("the request failed")
            answer = encode_refusal(f"host error: {error.strerror or error}")
        self.wfile.write(answer + b"\n")


class HelperServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, socket_path: str, disks: TenantDisks, client_uid: int) -> None:
        self.disks = disks
        self.client_uid = client_uid
        path = Path(socket_path)
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if path.exists() and stat.S_ISSOCK(path.stat().st_mode):
            path.unlink()
        super().__init__(socket_path, _Handler)
        os.chown(socket_path, client_uid, 0)
        os.chmod(socket_path, 0o600)

    def peer_allowed(self, connection: socket.socket) -> bool:
        credentials = connection.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
        )
        _pid, uid, _gid = struct.unpack("3i", credentials)
        return uid in (0, self.client_uid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fta-tenant-disk", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--client-uid", type=int, required=True, help="the worker's uid")
    parser.add_argument("--owner", default="10000:10000", help="uid:gid of the job user")
    parser.add_argument("--max-gib", type=int, default=500, help="largest disk of one tenant")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if os.geteuid() != 0:
        print("fta-tenant-disk must run as root (it mounts file systems)", file=sys.stderr)
        return 2
    uid, gid = (int(part) for part in args.owner.split(":"))
    disks = TenantDisks(args.root, owner=(uid, gid), max_bytes=args.max_gib * 1024 * MIB)
    log.info("remounted %d tenant disks", disks.mount_all())
    with HelperServer(args.socket, disks, args.client_uid) as server:
        log.info("listening on %s", args.socket)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
