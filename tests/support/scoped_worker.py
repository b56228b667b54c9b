"""A worker kept to some tenants: a test sandbox's, which shares its database with tests that
play the worker's part for their own tenants themselves.

The product's worker serves every tenant; these subclasses narrow what it claims, converges,
releases and prunes to `tenants` (a live set: tenants added later are served too), and leave
the installation-wide billing round to the tests, whose rows it would otherwise lock and
change under them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.bots.models import Bot
from fta.db import utcnow
from fta.jobs import service as jobs
from fta.jobs.models import Job
from fta.jobs.retention import prune_job_outputs
from fta.privacy.erasure import erase_pending
from fta.runtime import JobRunner
from fta.settings import Settings
from fta.worker.bots import BotSupervisor
from fta.worker.leases import Lease
from fta.worker.main import Worker
from fta.worker.network_slots import release_unused_networks


class ScopedBotSupervisor(BotSupervisor):
    def __init__(
        self,
        runner: JobRunner,
        settings: Settings,
        tenants: Collection[str],
        lease: Lease | None = None,
    ) -> None:
        super().__init__(runner, settings, lease)
        self.tenants = tenants

    def bots_to_converge(self, session: Session) -> set[uuid.UUID]:
        todo = super().bots_to_converge(session)
        if not todo:
            return todo
        return set(
            session.scalars(
                select(Bot.id).where(Bot.id.in_(list(todo)), Bot.tenant_id.in_(list(self.tenants)))
            )
        )


class ScopedWorker(Worker):
    def __init__(
        self,
        runner: JobRunner,
        settings: Settings,
        max_parallel: int | None = None,
        *,
        tenants: Collection[str],
    ) -> None:
        super().__init__(runner, settings, max_parallel)
        self.tenants = tenants
        self.bots = ScopedBotSupervisor(runner, settings, tenants, self.lease)

    def claim_next_job(self, session: Session) -> Job | None:
        return jobs.claim_next_job(session, slots=self.max_parallel, tenants=self.tenants)

    def release_networks(self) -> list[str]:
        return release_unused_networks(self.runner, self.settings, utcnow(), tenants=self.tenants)

    def prune_batch(self, session: Session) -> int:
        return prune_job_outputs(session, utcnow(), tenants=self.tenants)

    def erase_accounts(self) -> list[str]:
        """Its tenants' erasures, without PayPal (the tests' own to drive, with its stand-in)."""
        return erase_pending(self.runner, None, utcnow(), tenants=self.tenants)

    def billing_round(self) -> None:
        """The installation's billing round is the tests' own to run."""
