"""Keeps every bot's container as Postgres wants it: desired state in the database, actual
state from Docker's labels, converged every few seconds.

A bot that should run and has no container gets one; one that exited is a crash (restarted
after a back-off that doubles, up to `bot_max_restarts` in a row, then left `crashed` with
its last lines); a bot that should not run is stopped gracefully (SIGTERM, then SIGKILL) and
its container removed, in a thread of its own: a bot deaf to SIGTERM holds neither the other
bots' convergence nor its own row lock through its grace period. Each container run is
metered (CPU time, peak memory, running time) in `bot_runs`, like a job. Its data (trade
database, candles) lives in the tenant's volume and outlives every container. A worker that
restarts finds running bots by their labels and follows them again: nothing is started twice.

Several workers may converge at once (fta.worker.leases): a bot is converged by the worker
its row names while that worker's lease is live; a worker takes over, under the bot's row
lock, a bot that names no worker or one whose lease ran out. So no bot is started, stopped or
followed by two workers.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.access.quotas import quotas
from fta.accounts.models import Tenant
from fta.bots import relay
from fta.bots import service as bots
from fta.bots.models import ActualState, Bot, DesiredState
from fta.bots.snapshots import parse_report_line
from fta.db import session_scope
from fta.freqtrade.bundle import build_bot_bundle, encode_bundle
from fta.freqtrade.options import parse_bot_config
from fta.runtime import ContainerRuntimeError, JobRunner, ManagedContainer, Mount, Usage
from fta.runtime.spec import tenant_network_name
from fta.settings import Settings
from fta.worker import leases
from fta.worker.containers import UsageSampler, container_spec, cpu_decimal
from fta.worker.leases import Lease
from fta.worker.limits import plan_disk_bytes, plan_limits
from fta.worker.log_capture import exit_error, output_capture
from fta.worker.network_slots import AtCapacity, take_slot_now

log = logging.getLogger(__name__)

BOT_DATA_TARGET = "/freqtrade/user_data"
CRASH_TAIL_LINES = 40
LOG_FLUSH_SECONDS = 2.0
LOG_FLUSH_CHARS = 32 * 1024
USAGE_SAMPLE_SECONDS = 30.0


class BotSupervisor:
    def __init__(self, runner: JobRunner, settings: Settings, lease: Lease | None = None) -> None:
        self.runner = runner
        self.settings = settings
        # This worker's lease; None: the only supervisor (it owns every bot).
        self.lease = lease
        self._followers: dict[str, threading.Thread] = {}
        # Containers being stopped and removed, by id: a round leaves their bots alone.
        self._stoppers: dict[str, threading.Thread] = {}
        self._sampler = UsageSampler(runner, USAGE_SAMPLE_SECONDS)
        self._lock = threading.Lock()

    @property
    def gateway_url(self) -> str:
        return self.runner.market_data_url()

    def run_forever(self, stopping: threading.Event) -> None:
        """Converges until `stopping` is set; bots keep running when the worker stops."""
        while not stopping.is_set():
            try:
                if self.lease is None or self.lease.held():
                    self.converge()
            except Exception:
                log.exception("bot convergence round failed; retrying")
            stopping.wait(self.settings.bot_converge_seconds)
        self.wait_for_stops(self.settings.bot_stop_timeout_seconds + 30)

    def wait_for_stops(self, timeout: float) -> None:
        """Waits (at most `timeout` seconds) for the stops in progress to end."""
        deadline = time.monotonic() + timeout
        with self._lock:
            stoppers = list(self._stoppers.values())
        for stopper in stoppers:
            stopper.join(max(0.0, deadline - time.monotonic()))

    def converge(self) -> None:
        by_bot: dict[str, list[ManagedContainer]] = {}
        for container in self.runner.list_managed():
            if container.owner_kind == "bot":
                by_bot.setdefault(container.owner_id, []).append(container)
        with session_scope() as session:
            todo = self.bots_to_converge(session)
            labelled = [_uuid(owner) for owner in by_bot]
            known = bots.known_bot_ids(session, [i for i in labelled if i is not None])
            others = self._others_bots(session)
        for owner, containers in by_bot.items():
            bot_id = _uuid(owner)
            if bot_id is None or bot_id not in known:
                log.warning("removing container(s) of unknown bot %r", owner)
                self._discard(containers)
            else:
                todo.add(bot_id)
        # Another live worker's bots are its own: not even their rows are locked here.
        for bot_id in sorted(todo - others):
            try:
                self._converge_one(bot_id, by_bot.get(str(bot_id), []))
            except Exception:
                log.exception("bot %s: convergence failed", bot_id)

    def bots_to_converge(self, session: Session) -> set[uuid.UUID]:
        """The bots a round looks at besides those its runner has containers of: the ones
        out of step with what is wanted, and the ones that should have a container."""
        todo = {bot.id for bot, _ in bots.bots_needing_action(session)}
        return todo | set(bots.bots_with_containers(session))

    # --- one bot --------------------------------------------------------------------------

    def _converge_one(self, bot_id: uuid.UUID, containers: list[ManagedContainer]) -> None:
        if not self._take(bot_id):
            return
        with session_scope() as session:
            bot = bots.lock_bot(session, bot_id)
            if bot is None or self._stopping(bot.container_id) or not self._owns(bot):
                return
            tenant = session.get(Tenant, bot.tenant_id)
            assert tenant is not None  # noqa: S101 - foreign key
            # Only the container the bot row names is its own; any other is a leftover.
            self._discard([c for c in containers if c.id != bot.container_id])
            own = next((c.id for c in containers if c.id == bot.container_id), None)
            if bots.wanted_state(bot, tenant.status) is DesiredState.STOPPED:
                self._stop(session, bot, own)
                return
            state = self.runner.state(own) if own else None
            if own is not None and state is not None and state.running:
                if bot.restart_requested_at is None:
                    self._sample(session, bot, own)
                    if bot.api_address is None:  # followed again, or started before
                        self._note_api_address(session, bot, own, tenant.id)
                    self._follow(bot, own)
                    return
                # A restart: the stop ends in the background, a later round starts it again.
                self._stop(session, bot, own)
                return
            elif own is not None or _expects_container(bot):
                self._crashed(session, bot, own, state.exit_code if state else None)
                return
            if ActualState(bot.actual_state) is ActualState.CRASHED and not self._may_restart(bot):
                return
            self._start(session, bot, tenant)

    def _others_bots(self, session: Session) -> set[uuid.UUID]:
        """The bots that other workers with a live lease converge."""
        if self.lease is None:
            return set()
        return set(
            session.scalars(
                select(Bot.id).where(
                    Bot.worker_id.is_not(None),
                    Bot.worker_id != self.lease.worker_id,
                    leases.live(Bot.worker_id),
                )
            )
        )

    def _take(self, bot_id: uuid.UUID) -> bool:
        """Whether this worker converges the bot: its row names this worker's live lease, or
        named none or a worker whose lease ran out and now names this one (changed under the
        row's lock, in a transaction of its own: the round's changes to the bot come after)."""
        if self.lease is None:
            return True
        if not self.lease.held():
            return False
        worker_id = self.lease.worker_id
        with session_scope() as session:
            bot = bots.lock_bot(session, bot_id)
            if bot is None or bot.worker_id == worker_id:
                return bot is not None
            if leases.is_live(session, bot.worker_id):
                return False
            if bot.worker_id is not None:
                log.info("bot %s: taken over from worker %s", bot.id, bot.worker_id)
            bot.worker_id = worker_id
        return True

    def _owns(self, bot: Bot) -> bool:
        """Whether the bot, its row locked, is this worker's to converge now."""
        return self.lease is None or self.lease.holds(bot.worker_id)

    def _may_restart(self, bot: Bot) -> bool:
        if bot.restarts >= self.settings.bot_max_restarts:
            return False  # given up: the client's start or restart begins a new series
        until = bot.restart_backoff_until
        return until is None or datetime.now(UTC) >= until

    def _start(self, session: Session, bot: Bot, tenant: Tenant) -> None:
        bots.advance(bot, ActualState.STARTING)
        api, api_key_id = relay.start_secrets(bot.id)
        try:
            name, source = bots.pinned_strategy(session, bot)
            bundle = build_bot_bundle(
                parse_bot_config(bot.config),
                bot_id=bot.id,
                strategy_name=name,
                strategy_source=source,
                gateway_url=self.gateway_url,
                report_interval_s=self.settings.bot_report_seconds,
                api=api,
            )
            # Its own transaction: other tenants' first starts need not wait for this one.
            slot = take_slot_now(tenant.id, self.settings, datetime.now(UTC))
            network = self.runner.ensure_tenant_network(tenant.id, slot)
            granted = quotas(session, tenant, datetime.now(UTC))
            volume = self.runner.ensure_tenant_volume(tenant.id, plan_disk_bytes(granted))
            spec = container_spec(
                self.runner,
                self.settings,
                tenant_id=tenant.id,
                owner_kind="bot",
                owner_id=str(bot.id),
                bundle_env=encode_bundle(bundle),
                network=network,
                mounts=[Mount(volume, BOT_DATA_TARGET, read_only=False)],
                limits=plan_limits(granted, self.settings),
            )
            container_id = self.runner.create(spec)
        except (ContainerRuntimeError, ValidationError, ValueError, AtCapacity) as error:
            log.error("bot %s could not start: %s", bot.id, error)
            self._record_crash(bot, f"the bot could not start: {error}", None)
            return
        bots.record_container(session, bot.id, container_id, api_key_id)
        # Committed before the start: a worker that dies now finds the container by its row.
        session.commit()
        try:
            self.runner.start(container_id)
        except ContainerRuntimeError as error:
            self.runner.remove(container_id)
            self._record_crash(bot, f"the bot could not start: {error}", None)
            return
        log.info("bot %s started in %s", bot.id, container_id[:12])
        self._note_api_address(session, bot, container_id, tenant.id)
        self._follow(bot, container_id)

    def _note_api_address(
        self, session: Session, bot: Bot, container_id: str, tenant_id: str
    ) -> None:
        """Where the bot's API listens: its container's address on the tenant's network, as
        the engine assigned it, for the portal's relay."""
        try:
            address = self.runner.container_address(container_id, tenant_network_name(tenant_id))
        except ContainerRuntimeError as error:
            log.warning("bot %s: address not read: %s", bot.id, error)
            return
        relay.record_api_address(session, bot.id, container_id, address)

    def _sample(
        self, session: Session, bot: Bot, container_id: str, *, ended: bool = False
    ) -> None:
        """A usage sample of the running container, at most every `USAGE_SAMPLE_SECONDS`;
        the last one when it ends (a stopped container's counters read zero, and the
        recorded ones never go down)."""
        if not ended and not self._sampler.due(container_id):
            return
        usage = self._sampler.read(container_id) or Usage(0.0, 0)
        bots.record_run_usage(
            session,
            bot,
            container_id,
            cpu_seconds=cpu_decimal(usage),
            memory_max_bytes=usage.memory_max_bytes,
            ended=ended,
        )
        if ended:
            self._sampler.forget(container_id)

    def _stop(self, session: Session, bot: Bot, container_id: str | None) -> None:
        """Stops the bot: at once without a container; otherwise marked stopping, and its
        container stopped and removed in the background (see `_stop_in_background`)."""
        if container_id is None:
            if ActualState(bot.actual_state) is not ActualState.STOPPED:
                bots.advance(bot, ActualState.STOPPED)
            return
        self._sample(session, bot, container_id, ended=True)
        if ActualState(bot.actual_state) in (ActualState.STARTING, ActualState.RUNNING):
            bots.advance(bot, ActualState.STOPPING)
        self._stop_in_background(container_id, bot.id)

    def _stopping(self, container_id: str | None) -> bool:
        with self._lock:
            return container_id is not None and container_id in self._stoppers

    def _stop_in_background(self, container_id: str, bot_id: uuid.UUID | None) -> None:
        """SIGTERM, the grace period, SIGKILL and removal, in a thread; then, for a bot's own
        container, the bot is marked stopped (its row locked only for that)."""
        with self._lock:
            if container_id in self._stoppers:
                return
            stopper = threading.Thread(
                target=self._stop_and_remove, args=(container_id, bot_id), daemon=True,
                name=f"stop-{container_id[:12]}",
            )  # fmt: skip
            self._stoppers[container_id] = stopper
        stopper.start()

    def _stop_and_remove(self, container_id: str, bot_id: uuid.UUID | None) -> None:
        try:
            self.runner.stop(container_id, self.settings.bot_stop_timeout_seconds)
            self.runner.remove(container_id)
            if bot_id is not None:
                with session_scope() as session:
                    bot = bots.lock_bot(session, bot_id)
                    if bot is not None and bot.container_id == container_id:
                        bots.advance(bot, ActualState.STOPPED)
                log.info("bot %s stopped", bot_id)
        except Exception:
            # The container or the row stays as it was: the next rounds try again.
            log.exception("container %s: stop failed", container_id[:12])
        finally:
            with self._lock:
                self._stoppers.pop(container_id, None)

    def _crashed(
        self, session: Session, bot: Bot, container_id: str | None, exit_code: int | None
    ) -> None:
        lines: list[str] = []
        if container_id is not None:
            self._sample(session, bot, container_id, ended=True)
            try:
                lines = self.runner.tail_logs(container_id, CRASH_TAIL_LINES)
            except ContainerRuntimeError:
                lines = []
            self.runner.remove(container_id)
        if exit_code is None:
            error = "the bot's container disappeared (engine restart or removal)"
        else:
            error = exit_error(exit_code, lines)
        log.warning("bot %s crashed: %s", bot.id, error)
        self._record_crash(bot, error, "\n".join(lines) or None)

    def _record_crash(self, bot: Bot, error: str, last_lines: str | None) -> None:
        if bot.restarts >= self.settings.bot_max_restarts:
            error += f"; not restarted after {bot.restarts} automatic restarts in a row"
        bots.record_crash(bot, error, last_lines, datetime.now(UTC))

    def _discard(self, containers: Iterable[ManagedContainer]) -> None:
        for container in containers:
            self._stop_in_background(container.id, None)

    # --- following a running bot ----------------------------------------------------------

    def _follow(self, bot: Bot, container_id: str) -> None:
        with self._lock:
            follower = self._followers.get(container_id)
            if follower is not None and follower.is_alive():
                return
            since = bot.status_at
            follower = threading.Thread(
                target=self._read, args=(bot.id, container_id, since, bot.worker_id),
                daemon=True, name=f"bot-{str(bot.id)[:8]}",
            )  # fmt: skip
            self._followers[container_id] = follower
        follower.start()

    def _read(
        self, bot_id: uuid.UUID, container_id: str, since: datetime | None, owner: str | None
    ) -> None:
        """Stores the bot's reports and log while this worker's lease `owner` is live (the
        worker that takes the bot over follows it then)."""
        capture = output_capture(self.settings, capped=False)
        flushed = time.monotonic()
        try:
            for line in self.runner.follow_logs(container_id, since=since):
                if self.lease is not None and not self.lease.holds(owner):
                    log.info("bot %s: no longer followed by this worker", bot_id)
                    capture.take_pending()
                    break
                report = parse_report_line(line)
                if report is not None:
                    with session_scope() as session:
                        bots.record_report(session, bot_id, container_id, report)
                else:
                    capture.feed(line)
                pending = capture.pending_chars
                if pending and (
                    pending >= LOG_FLUSH_CHARS or time.monotonic() - flushed >= LOG_FLUSH_SECONDS
                ):
                    self._store_log(bot_id, capture.take_pending())
                    flushed = time.monotonic()
        except ContainerRuntimeError as error:
            log.warning("bot %s: log stream ended: %s", bot_id, error)
        finally:
            if capture.pending_chars:
                self._store_log(bot_id, capture.take_pending())
            with self._lock:
                self._followers.pop(container_id, None)

    def _store_log(self, bot_id: uuid.UUID, text: str) -> None:
        with session_scope() as session:
            bots.append_log(session, bot_id, text)


def _expects_container(bot: Bot) -> bool:
    return ActualState(bot.actual_state) in (
        ActualState.STARTING,
        ActualState.RUNNING,
        ActualState.STOPPING,
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
