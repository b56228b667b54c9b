"""What the worker and the root helper say to each other: one JSON line each way, for one of
three actions: `ensure` a tenant's disk, `remove` it, or tell every disk's `usage`.

Standard library only: the helper runs with the host's python3, outside any virtualenv.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

TENANT_ID_RE = re.compile(r"[a-z0-9]{1,10}")
# Also spliced into the socket proxy's body regexes: no character with a regex meaning.
ROOT_RE = re.compile(r"/[a-z0-9_/-]{1,200}")
MIB = 1024 * 1024
MIN_SIZE_BYTES = 16 * MIB
MAX_LINE_BYTES = 1024
# The usage answer lists every disk of the host (about 80 bytes each).
MAX_USAGE_ANSWER_BYTES = 16 * MIB


class ProtocolError(ValueError):
    """A request or an answer that is not what the protocol allows."""


def check_root(root: str) -> str:
    if not ROOT_RE.fullmatch(root) or "//" in root or root.endswith("/"):
        raise ProtocolError(f"tenant disk root must be a plain absolute path: {root!r}")
    return root


def mount_path(root: str, tenant_id: str) -> str:
    return str(PurePosixPath(check_root(root)) / "mounts" / tenant_id)


def image_path(root: str, tenant_id: str) -> str:
    return str(PurePosixPath(check_root(root)) / "images" / f"{tenant_id}.img")


@dataclass(frozen=True)
class EnsureRequest:
    tenant_id: str
    size_bytes: int

    def __post_init__(self) -> None:
        if not TENANT_ID_RE.fullmatch(self.tenant_id):
            raise ProtocolError(f"not a tenant id: {self.tenant_id!r}")
        if isinstance(self.size_bytes, bool) or not isinstance(self.size_bytes, int):
            raise ProtocolError("size_bytes must be an integer")
        if self.size_bytes < MIN_SIZE_BYTES:
            raise ProtocolError(f"size_bytes must be at least {MIN_SIZE_BYTES}")

    def encode(self) -> bytes:
        body = {"action": "ensure", "tenant": self.tenant_id, "size_bytes": self.size_bytes}
        return json.dumps(body).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> EnsureRequest:
        request = decode_request(line)
        if not isinstance(request, EnsureRequest):
            raise ProtocolError(EXPECTED)
        return request


@dataclass(frozen=True)
class RemoveRequest:
    """The tenant's disk is no longer wanted (its account is erased): unmount it and delete
    its image, with everything on it."""

    tenant_id: str

    def __post_init__(self) -> None:
        if not TENANT_ID_RE.fullmatch(self.tenant_id):
            raise ProtocolError(f"not a tenant id: {self.tenant_id!r}")

    def encode(self) -> bytes:
        return json.dumps({"action": "remove", "tenant": self.tenant_id}).encode() + b"\n"


@dataclass(frozen=True)
class UsageRequest:
    """How full each tenant's disk is."""

    def encode(self) -> bytes:
        return json.dumps({"action": "usage"}).encode() + b"\n"


EXPECTED = (
    "expected {action: ensure, tenant, size_bytes}, {action: remove, tenant} or {action: usage}"
)


def decode_request(line: bytes) -> EnsureRequest | RemoveRequest | UsageRequest:
    """A client's request: exactly the fields of one of the actions, nothing else."""
    data = _object(line)
    action = data.get("action")
    if action == "ensure" and set(data) == {"action", "tenant", "size_bytes"}:
        tenant = _tenant(data)
        return EnsureRequest(tenant_id=tenant, size_bytes=data["size_bytes"])
    if action == "remove" and set(data) == {"action", "tenant"}:
        return RemoveRequest(tenant_id=_tenant(data))
    if action == "usage" and set(data) == {"action"}:
        return UsageRequest()
    raise ProtocolError(EXPECTED)


def _tenant(data: dict[str, Any]) -> str:
    tenant = data["tenant"]
    if not isinstance(tenant, str):
        raise ProtocolError("tenant must be a string")
    return tenant


@dataclass(frozen=True)
class EnsureAnswer:
    """The mounted file system: its path and its size. The size is the one asked for, or more
    when the disk was bigger already (disks never shrink), or less while a disk that has to
    be unmounted to grow is in use."""

    path: str
    size_bytes: int

    def encode(self) -> bytes:
        return json.dumps({"ok": True, "path": self.path, "size_bytes": self.size_bytes}).encode()

    @classmethod
    def decode(cls, line: bytes) -> EnsureAnswer:
        data = _object(line)
        if data.get("ok") is not True:
            raise HelperRefused(str(data.get("error") or "the tenant disk helper refused"))
        path, size = data.get("path"), data.get("size_bytes")
        if not isinstance(path, str) or not isinstance(size, int) or isinstance(size, bool):
            raise ProtocolError("malformed answer from the tenant disk helper")
        return cls(path=path, size_bytes=size)


@dataclass(frozen=True)
class RemoveAnswer:
    """The disk is gone: unmounted, its image deleted. `removed` is false when there was no
    image (removed before, or never made)."""

    removed: bool

    def encode(self) -> bytes:
        return json.dumps({"ok": True, "removed": self.removed}).encode()

    @classmethod
    def decode(cls, line: bytes) -> RemoveAnswer:
        data = _object(line)
        if data.get("ok") is not True:
            raise HelperRefused(str(data.get("error") or "the tenant disk helper refused"))
        removed = data.get("removed")
        if not isinstance(removed, bool):
            raise ProtocolError("malformed answer from the tenant disk helper")
        return cls(removed=removed)


@dataclass(frozen=True)
class DiskUsage:
    """One tenant's disk: its file system's size and the bytes its files take."""

    tenant_id: str
    size_bytes: int
    used_bytes: int

    def as_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant_id,
            "size_bytes": self.size_bytes,
            "used_bytes": self.used_bytes,
        }


@dataclass(frozen=True)
class UsageAnswer:
    disks: tuple[DiskUsage, ...]

    def encode(self) -> bytes:
        return json.dumps({"ok": True, "disks": [d.as_json() for d in self.disks]}).encode()

    @classmethod
    def decode(cls, line: bytes) -> UsageAnswer:
        data = _object(line, MAX_USAGE_ANSWER_BYTES)
        if data.get("ok") is not True:
            raise HelperRefused(str(data.get("error") or "the tenant disk helper refused"))
        disks = data.get("disks")
        if not isinstance(disks, list):
            raise ProtocolError("malformed answer from the tenant disk helper")
        return cls(disks=tuple(_disk_usage(disk) for disk in disks))


def _disk_usage(data: object) -> DiskUsage:
    if not isinstance(data, dict) or set(data) != {"tenant", "size_bytes", "used_bytes"}:
        raise ProtocolError("malformed disk in the tenant disk helper's answer")
    tenant, size, used = data["tenant"], data["size_bytes"], data["used_bytes"]
    if not isinstance(tenant, str) or not TENANT_ID_RE.fullmatch(tenant):
        raise ProtocolError("malformed disk in the tenant disk helper's answer")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (size, used)):
        raise ProtocolError("malformed disk in the tenant disk helper's answer")
    return DiskUsage(tenant_id=tenant, size_bytes=size, used_bytes=used)


class HelperRefused(Exception):
    """The helper could not provide the disk; its message says why."""


def encode_refusal(message: str) -> bytes:
    return json.dumps({"ok": False, "error": message[:500]}).encode()


def _object(line: bytes, max_bytes: int = MAX_LINE_BYTES) -> dict[str, Any]:
    if len(line) > max_bytes:
        raise ProtocolError("line too long")
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError("not a JSON line") from error
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    return data
