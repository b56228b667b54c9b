"""Bounds on live log streams (server-sent events), per tenant and in all.

A stream holds a connection for minutes and polls the database every second: unbounded, one
client opening hundreds slows every other client's requests. A stream takes a lease before
its response starts (so a refusal is an ordinary problem+json answer) and returns it when it
ends, however it ends.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from functools import lru_cache

from fta.errors import RetryLater
from fta.settings import get_settings

RETRY_AFTER_SECONDS = 30
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class TooManyStreams(RetryLater):
    title = "Too many log streams"


class StreamsBusy(RetryLater):
    status = 503
    title = "Busy"


class StreamLease:
    """One stream's place; `release` is idempotent."""

    def __init__(self, registry: StreamRegistry, tenant_id: str) -> None:
        self._registry = registry
        self._tenant_id = tenant_id
        self._released = False

    def release(self) -> None:
        with self._registry.lock:
            if self._released:
                return
            self._released = True
            self._registry.open_by_tenant[self._tenant_id] -= 1
            if not self._registry.open_by_tenant[self._tenant_id]:
                del self._registry.open_by_tenant[self._tenant_id]


class StreamRegistry:
    def __init__(self, per_tenant: int, total: int) -> None:
        self.per_tenant = per_tenant
        self.total = total
        self.lock = threading.Lock()
        self.open_by_tenant: Counter[str] = Counter()

    def acquire(self, tenant_id: str) -> StreamLease:
        with self.lock:
            if self.open_by_tenant[tenant_id] >= self.per_tenant:
                raise TooManyStreams(
                    f"you already follow {self.per_tenant} log streams at once (the most one "
                    "account may): close one, or read pages without follow",
                    RETRY_AFTER_SECONDS,
                )
            if self.open_by_tenant.total() >= self.total:
                raise StreamsBusy(
                    "the service follows as many log streams as it can right now: retry in "
                    f"{RETRY_AFTER_SECONDS} seconds, or read pages without follow",
                    RETRY_AFTER_SECONDS,
                )
            self.open_by_tenant[tenant_id] += 1
        return StreamLease(self, tenant_id)


@lru_cache(maxsize=1)
def stream_registry() -> StreamRegistry:
    """The portal process's registry, sized from the settings."""
    settings = get_settings()
    return StreamRegistry(settings.log_streams_per_tenant, settings.log_streams_total)


def event(kind: str, text: str, event_id: int | None = None) -> str:
    """One server-sent event: each line of `text` a `data:` line, so that no line of it can
    start a field or an event of its own."""
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {kind}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(text))
    return "\n".join(lines) + "\n\n"
