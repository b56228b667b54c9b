"""Tenant network slots: which subnet of the pool (fta.runtime.network) a tenant's network has.

A slot is taken when the worker first needs the tenant's network (a job or a bot start): the
smallest index no tenant holds. It is given back when the tenant has not run anything for
`network_idle_days`, or its account is suspended or cancelled, and nothing of it runs: the
worker's periodic round removes the network and frees the index. Sign-ups take none, so a
burst of accounts cannot use up the pool; the next run takes a slot again (maybe another one)
and the network is made anew.

Who may change a tenant's slot is serialised by its row lock: a job's handler takes it once
the job is claimed (so the round sees the job), a bot's start holds the bot's row throughout
(so the round, which must lock all of the tenant's bots, leaves it alone).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, text
from sqlalchemy.orm import Session

from fta.accounts import service as accounts
from fta.accounts.models import BLOCKED, Tenant, TenantStatus
from fta.bots.models import ActualState, Bot, BotRun
from fta.db import session_scope
from fta.jobs.models import FINAL_STATUSES, Job
from fta.runtime import ContainerRuntimeError, JobRunner
from fta.settings import Settings
from fta.worker.warm_pool import WARM_OWNER_PREFIX

log = logging.getLogger(__name__)

# How often the worker looks for slots to give back.
NETWORK_CHECK_SECONDS = 300.0
# The transaction-scoped advisory lock that takes turns between allocations.
ALLOCATION_LOCK = 0x66746E6574  # "ftnet"
AT_CAPACITY = (
    "the platform is at capacity for running more clients' jobs and bots right now: "
    "try again later or contact support"
)
# Bot states without a container the round could cut off.
RESTING = (ActualState.STOPPED, ActualState.CRASHED)

# The smallest index no tenant holds: 0, or one above a held index whose next is free.
_SMALLEST_FREE = text(
    "SELECT min(candidate) FROM ("
    " SELECT 0 AS candidate WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE subnet_index = 0)"
    " UNION ALL"
    " SELECT t.subnet_index + 1 FROM tenants t WHERE t.subnet_index IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM tenants u WHERE u.subnet_index = t.subnet_index + 1)"
    ") AS free"
)


class AtCapacity(Exception):
    """Every slot of the pool is held: the tenant's network cannot be made now."""

    def __init__(self) -> None:
        super().__init__(AT_CAPACITY)


def capacity(settings: Settings) -> int:
    pool_prefix = int(settings.tenant_subnet_pool.rsplit("/", 1)[1])
    return int(2 ** (settings.tenant_subnet_prefix - pool_prefix))


def take_slot(session: Session, tenant_id: str, settings: Settings, now: datetime) -> int:
    """The tenant's slot, taken now if it holds none (AtCapacity when none is free); notes
    the use. Holds the tenant's row until the caller's transaction ends."""
    tenant = session.scalars(
        select(Tenant)
        .where(Tenant.id == tenant_id)
        .with_for_update(of=Tenant)
        .execution_options(populate_existing=True)
    ).one()
    accounts.note_network_use(tenant, now)
    if tenant.subnet_index is not None:
        return int(tenant.subnet_index)
    # One allocation at a time: the next one sees this one's slot once it is committed.
    session.execute(select(func.pg_advisory_xact_lock(ALLOCATION_LOCK)))
    index = int(session.execute(_SMALLEST_FREE).scalar_one())
    if index >= capacity(settings):
        raise AtCapacity()
    accounts.assign_network_slot(tenant, index)
    session.flush()
    log.info("tenant %s takes network slot %d", tenant_id, index)
    return index


def take_slot_now(tenant_id: str, settings: Settings, now: datetime) -> int:
    """`take_slot` in a transaction of its own, committed at once."""
    with session_scope() as session:
        return take_slot(session, tenant_id, settings, now)


def _last_activity() -> ColumnElement[datetime]:
    """When each tenant last started or ended something (its sign-up if never)."""
    last_job = select(func.max(Job.finished_at)).where(Job.tenant_id == Tenant.id).scalar_subquery()
    last_bot = (
        select(func.max(BotRun.ended_at)).where(BotRun.tenant_id == Tenant.id).scalar_subquery()
    )
    return func.greatest(Tenant.created_at, Tenant.network_used_at, last_job, last_bot)


def _unused(now: datetime, idle_days: int) -> ColumnElement[bool]:
    idle_since = now - timedelta(days=idle_days)
    return or_(
        Tenant.status == TenantStatus.SUSPENDED,
        Tenant.billing_status.in_(list(BLOCKED)),
        _last_activity() < idle_since,
    )


def releasable(
    session: Session, now: datetime, idle_days: int, tenants: Collection[str] | None = None
) -> list[str]:
    """Tenants holding a slot that they do not use (to be checked again under lock)."""
    query = select(Tenant.id).where(Tenant.subnet_index.is_not(None), _unused(now, idle_days))
    if tenants is not None:
        query = query.where(Tenant.id.in_(list(tenants)))
    return list(session.scalars(query.order_by(Tenant.id)))


def lock_unused(session: Session, tenant_id: str, now: datetime, idle_days: int) -> Tenant | None:
    """The tenant's row, locked, if it still holds a slot it does not use and nothing of it
    runs or is starting: no job short of a final state, every bot stopped or crashed and none
    being converged right now. None otherwise."""
    tenant = session.scalars(
        select(Tenant)
        .where(Tenant.id == tenant_id, Tenant.subnet_index.is_not(None), _unused(now, idle_days))
        .with_for_update(of=Tenant, skip_locked=True)
        .execution_options(populate_existing=True)
    ).first()
    if tenant is None:
        return None
    active_job = session.scalar(
        select(Job.id).where(Job.tenant_id == tenant_id, Job.status.not_in(FINAL_STATUSES))
    )
    if active_job is not None:
        return None
    all_bots = session.scalar(select(func.count(Bot.id)).where(Bot.tenant_id == tenant_id))
    locked = list(
        session.scalars(
            select(Bot.actual_state)
            .where(Bot.tenant_id == tenant_id)
            .with_for_update(skip_locked=True)
        )
    )
    if len(locked) != all_bots or any(ActualState(state) not in RESTING for state in locked):
        return None
    return tenant


def release_unused_networks(
    runner: JobRunner,
    settings: Settings,
    now: datetime,
    *,
    tenants: Collection[str] | None = None,
) -> list[str]:
    """Removes the networks of tenants that do not use them and frees their slots; returns
    those tenants. `tenants`: only these (None: all). A failure leaves that tenant as it was
    for the next round."""
    idle_days = settings.network_idle_days
    with session_scope() as session:
        candidates = releasable(session, now, idle_days, tenants)
    if not candidates:
        return []
    # A warm container waits for the tenant's next job (fta.worker.warm_pool): it goes with
    # the network. One that serves a job makes the job active, and the tenant is kept.
    with_containers = {
        container.tenant
        for container in runner.list_managed()
        if not container.owner_id.startswith(WARM_OWNER_PREFIX)
    }
    released = []
    for tenant_id in candidates:
        if tenant_id in with_containers:
            continue
        try:
            with session_scope() as session:
                tenant = lock_unused(session, tenant_id, now, idle_days)
                if tenant is None:
                    continue
                # Listed again under the lock: another worker may have started a warm
                # container since (fta.worker.handlers holds the row shared meanwhile).
                own = [c for c in runner.list_managed() if c.tenant == tenant_id]
                if any(not c.owner_id.startswith(WARM_OWNER_PREFIX) for c in own):
                    continue
                for container_id in [c.id for c in own]:
                    runner.remove(container_id)
                # Removed while the row is locked: no start of the tenant's can come between.
                runner.remove_tenant_network(tenant_id)
                log.info("tenant %s gives back network slot %s", tenant_id, tenant.subnet_index)
                accounts.assign_network_slot(tenant, None)
            released.append(tenant_id)
        except ContainerRuntimeError as error:
            log.warning("tenant %s: network not removed: %s", tenant_id, error)
    return released
