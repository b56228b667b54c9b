"""Which tenant's job takes the next free slot of the worker's pool.

The pool is shared fairly: the next slot goes to the waiting tenant that runs the fewest jobs
(ties: the oldest waiting job), so a tenant holds more than its fair share,
ceil(slots / tenants with work), only when every other waiting tenant does too. A tenant never
runs more jobs than its bounds allow (its plan; tighter on a trial), and trial accounts
together hold at most their part of the pool, so a paying client always finds a slot. A
running job is never pre-empted: its wall-time limit bounds how long it holds its slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TenantLoad:
    tenant_id: str
    running: int
    # Created-at of its oldest queued job; None when nothing of it waits.
    oldest_queued: datetime | None
    # Jobs it may run at once.
    limit: int
    trial: bool
    # False when its account may not start jobs now (suspended, trial used up).
    may_start: bool = True


def trial_slots(slots: int, percent: int) -> int:
    """The part of a pool of `slots` that trial accounts together may hold: at least one."""
    return max(1, slots * percent // 100)


def next_tenant(loads: Sequence[TenantLoad], *, trial_slots: int) -> str | None:
    """The tenant whose oldest queued job starts next, or None when no one may start."""
    trials_running = sum(load.running for load in loads if load.trial)
    eligible = [
        load
        for load in loads
        if load.oldest_queued is not None
        and load.may_start
        and load.running < load.limit
        and not (load.trial and trials_running >= trial_slots)
    ]
    if not eligible:
        return None
    chosen = min(eligible, key=lambda load: (load.running, load.oldest_queued, load.tenant_id))
    return chosen.tenant_id
