"""The worker's side of the tenant disk helper."""

from __future__ import annotations

import socket

from fta.tenantdisk.protocol import (
    MAX_LINE_BYTES,
    MAX_USAGE_ANSWER_BYTES,
    DiskUsage,
    EnsureAnswer,
    EnsureRequest,
    HelperRefused,
    ProtocolError,
    RemoveAnswer,
    RemoveRequest,
    UsageAnswer,
    UsageRequest,
    mount_path,
)

# Creating and formatting a large image takes a few seconds; growing one, a little more.
ENSURE_TIMEOUT_S = 120.0


class TenantDiskUnavailable(Exception):
    """The tenant's disk could not be provided: the helper is down or refused."""


class TenantDiskClient:
    def __init__(self, socket_path: str, root: str) -> None:
        self.socket_path = socket_path
        self.root = root

    def ensure(self, tenant_id: str, size_bytes: int) -> EnsureAnswer:
        """The tenant's mounted disk, at least `size_bytes` large."""
        request = EnsureRequest(tenant_id=tenant_id, size_bytes=size_bytes)
        try:
            answer = EnsureAnswer.decode(self._ask(request.encode()))
        except (HelperRefused, ProtocolError) as error:
            raise TenantDiskUnavailable(f"tenant disk refused: {error}") from error
        # The answer decides a bind mount: it must be the path this worker expects. Its size
        # may lag behind a plan that just grew while the disk is in use.
        if answer.path != mount_path(self.root, tenant_id):
            raise TenantDiskUnavailable(f"tenant disk helper answered {answer}")
        return answer

    def remove(self, tenant_id: str) -> bool:
        """Removes the tenant's disk for good (unmounted, its image deleted); whether there was
        one. Refused (TenantDiskUnavailable) while a container still uses it."""
        try:
            answer = RemoveAnswer.decode(self._ask(RemoveRequest(tenant_id=tenant_id).encode()))
        except (HelperRefused, ProtocolError) as error:
            raise TenantDiskUnavailable(f"tenant disk not removed: {error}") from error
        return answer.removed

    def usage(self) -> tuple[DiskUsage, ...]:
        """Every tenant disk of the host: its size and the bytes its files take."""
        try:
            line = self._ask(UsageRequest().encode(), MAX_USAGE_ANSWER_BYTES)
            return UsageAnswer.decode(line).disks
        except (HelperRefused, ProtocolError) as error:
            raise TenantDiskUnavailable(f"tenant disk usage not read: {error}") from error

    def _ask(self, request: bytes, max_answer: int = MAX_LINE_BYTES) -> bytes:
        """The helper's answer line to one request."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(ENSURE_TIMEOUT_S)
                connection.connect(self.socket_path)
                connection.sendall(request)
                return connection.makefile("rb").readline(max_answer + 1)
        except OSError as error:
            raise TenantDiskUnavailable(f"tenant disk helper unreachable: {error}") from error
