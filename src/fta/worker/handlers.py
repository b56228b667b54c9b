"""Runs one claimed job end to end and records how it ended."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from fta.access.quotas import quotas
from fta.accounts.models import Tenant, TenantStatus
from fta.billing import metering
from fta.db import session_scope, utcnow
from fta.errors import Invalid
from fta.freqtrade.bundle import build_job_bundle, encode_bundle
from fta.freqtrade.config import CONTAINER_PATHS, ContainerPaths
from fta.freqtrade.options import (
    JobConfig,
    first_startup_day,
    parse_job_config,
    parse_timerange,
)
from fta.freqtrade.startup import declared_startup_candles
from fta.jobs import service as jobs
from fta.jobs.models import Job, JobKind, JobStatus
from fta.jobs.summary import parse_result_line
from fta.market_data import candle_cache, recorded
from fta.markets import DataSource
from fta.runtime import (
    ContainerSpec,
    HardeningError,
    JobRunner,
    Limits,
    Mount,
    StorageUnavailable,
    TenantNetwork,
    Usage,
)
from fta.runtime.spec import OwnerKind
from fta.settings import Settings
from fta.strategies.models import Strategy, StrategyVersion
from fta.worker.containers import container_spec, cpu_decimal
from fta.worker.leases import Lease
from fta.worker.limits import plan_disk_bytes, plan_job_workers, plan_limits
from fta.worker.log_capture import LogCapture, exit_error, output_capture
from fta.worker.network_slots import AtCapacity, take_slot
from fta.worker.sandbox import Detached, Outcome, RunReport, run_container, supervise
from fta.worker.tenant_cpu import CgroupWindow, tenant_cpu_seconds
from fta.worker.warm_pool import WarmContainer, WarmPool

log = logging.getLogger(__name__)

# How often a job waiting for another job's fill of the same pairs looks again.
FILL_LOCK_RETRY_SECONDS = 1.0
# How often a running container's usage is saved on its job.
SAMPLE_SAVE_SECONDS = 10.0


@dataclass(frozen=True)
class JobContext:
    job_id: uuid.UUID
    tenant_id: str
    subnet_index: int
    kind: JobKind
    config: JobConfig
    strategy_name: str | None
    strategy_source: str | None
    limits: Limits
    disk_bytes: int
    max_seconds: int
    job_workers: int


def _load(session: Session, job: Job, settings: Settings) -> JobContext:
    tenant = session.get(Tenant, job.tenant_id)
    assert tenant is not None  # noqa: S101 - foreign key
    name = source = None
    if job.strategy_version_id is not None:
        version = session.get(StrategyVersion, job.strategy_version_id)
        assert version is not None  # noqa: S101 - foreign key
        strategy = session.get(Strategy, version.strategy_id)
        assert strategy is not None  # noqa: S101 - foreign key
        name, source = strategy.name, version.source
    granted = quotas(session, tenant, utcnow())
    return JobContext(
        job_id=job.id,
        tenant_id=tenant.id,
        subnet_index=take_slot(session, tenant.id, settings, utcnow()),
        kind=JobKind(job.kind),
        config=parse_job_config(job.kind, job.config),
        strategy_name=name,
        strategy_source=source,
        limits=plan_limits(granted, settings),
        disk_bytes=plan_disk_bytes(granted),
        max_seconds=job.max_seconds,
        job_workers=plan_job_workers(granted),
    )


class NotOwned(Exception):
    """Another worker took the job over: this one leaves it (fta.worker.leases)."""


class JobHandler:
    """Everything the worker does for one job, from `starting` to a final state.

    A job run under a lease (`owner`, the lease id it was claimed or adopted under) is acted
    on only while that lease is this worker's and live: each write checks, under the job's
    row lock, that the job still names it, and its container is left as it is (neither
    recorded nor removed) once the lease has run out, for the worker that takes it over."""

    def __init__(
        self,
        runner: JobRunner,
        settings: Settings,
        warm: WarmPool | None = None,
        stopping: threading.Event | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.runner = runner
        self.settings = settings
        # Containers started ahead for tenants' next jobs; None: every job gets a new one.
        self.warm = warm
        # Set when the worker stops: job containers are left running, for the next worker.
        self.stopping = stopping or threading.Event()
        self.lease = lease
        # The lease id each job in hand was claimed or adopted under.
        self._owners: dict[uuid.UUID, str] = {}

    @property
    def gateway_url(self) -> str:
        return self.runner.market_data_url()

    @property
    def container_paths(self) -> ContainerPaths:
        """Jobs read, and fills write, the cache's directory of the current data source only."""
        source = self.settings.market_data_source.value
        return dataclasses.replace(
            CONTAINER_PATHS, candles=CONTAINER_PATHS.path(CONTAINER_PATHS.candles, source)
        )

    def run(self, job_id: uuid.UUID, owner: str | None = None) -> None:
        """Runs a claimed job to its end; `owner`: the lease id it was claimed under."""
        if owner is not None:
            self._owners[job_id] = owner
        try:
            self._run(job_id)
        except NotOwned as lost:
            log.warning("job %s: %s", job_id, lost)
        finally:
            self._owners.pop(job_id, None)

    def adopt(self, job_id: uuid.UUID, container_id: str, owner: str | None = None) -> None:
        """`_adopt`, under the lease id `owner` the reconciler took the job over with."""
        if owner is not None:
            self._owners[job_id] = owner
        try:
            self._adopt(job_id, container_id)
        except NotOwned as lost:
            log.warning("job %s: %s", job_id, lost)
        finally:
            self._owners.pop(job_id, None)

    # --- ownership ----------------------------------------------------------------------

    def _holds(self, job_id: uuid.UUID) -> bool:
        """Whether this worker may still act on the job's container (its local bound of the
        lease, fta.worker.leases)."""
        owner = self._owners.get(job_id)
        return owner is None or self.lease is None or self.lease.holds(owner)

    def _detach_requested(self, job_id: uuid.UUID) -> bool:
        return self.stopping.is_set() or not self._holds(job_id)

    def _own(self, session: Session, job_id: uuid.UUID, *, share: bool = False) -> Job:
        """The job's row, locked until the transaction ends, while it names this worker's
        lease; NotOwned once another worker took it over."""
        owner = self._owners.get(job_id)
        if owner is None:
            job = session.get(Job, job_id)
        else:
            job = session.scalars(
                select(Job)
                .where(Job.id == job_id)
                .with_for_update(read=share)
                .execution_options(populate_existing=True)
            ).first()
        if job is None:
            raise NotOwned("the job is gone")
        if owner is not None and job.worker_id != owner:
            raise NotOwned(f"taken over by worker {job.worker_id}; this worker leaves it")
        return job

    def _run(self, job_id: uuid.UUID) -> None:
        try:
            with session_scope() as session:
                job = self._own(session, job_id)
                context = _load(session, job, self.settings)
                jobs.record_market_data_source(
                    session, job_id, self.settings.market_data_source.value
                )
        except AtCapacity as exc:
            log.error("job %s: no network slot free", job_id)
            self._finish(job_id, JobStatus.FAILED, error=str(exc))
            return
        # One budget of wall time for the job, market data included.
        deadline = time.monotonic() + context.max_seconds
        # The tenant's parent cgroup keeps the CPU time of removed containers: read around
        # the fill and the job, it is exact where the stats samples miss the last seconds.
        root, mount = self.settings.tenant_cgroup_root, Path(self.settings.host_cgroup_mount)
        start, before = utcnow(), tenant_cpu_seconds(context.tenant_id, root, mount)
        fill: RunReport | None = None
        job_spec: ContainerSpec | None = None
        warm: WarmContainer | None = None
        try:
            network = self.runner.ensure_tenant_network(context.tenant_id, context.subnet_index)
            volume = self.runner.ensure_tenant_volume(context.tenant_id, context.disk_bytes)
            self.runner.ensure_volume(self.settings.candle_volume)
            # Every kind reads the shared cache: a download is cut from it, warm for later.
            fill = self._fill_candle_cache(context, network, deadline)
            if fill is not None and fill.outcome in (Outcome.CANCELLED, Outcome.TIMED_OUT):
                report, capture, preparing = fill, self._capture(), True
                fill = None
            else:
                report, capture, job_spec, warm = self._run_job_container(
                    context, network, volume, deadline
                )
                preparing = False
        except HardeningError as exc:
            log.error("job %s refused: sandbox verification failed: %s", job_id, exc)
            self._finish(job_id, JobStatus.FAILED, error=f"sandbox verification failed: {exc}")
            return
        except StorageUnavailable as exc:
            log.error("job %s: tenant storage unavailable: %s", job_id, exc)
            self._finish(
                job_id,
                JobStatus.FAILED,
                error="your storage is unavailable right now: try again later",
            )
            return
        except CacheFillError as exc:
            self._finish(job_id, JobStatus.FAILED, error=str(exc))
            return
        except Detached as detached:
            log.info("job %s: %s", job_id, detached)
            return
        except NotOwned:
            raise
        except Exception:
            log.exception("job %s crashed in the worker", job_id)
            self._finish(job_id, JobStatus.FAILED, error="internal error while running the job")
            raise
        after = tenant_cpu_seconds(context.tenant_id, root, mount)
        if warm is not None and report.container_id == warm.container_id:
            # The container's imports ran before the job, while it waited: billed with it.
            start, before = warm.created_at, warm.tenant_cpu_before
        window = None
        if after is not None and after >= (before or 0):
            window = CgroupWindow(start, utcnow(), after - (before or 0))
        self._record(context, _with_fill(report, fill), capture, window, preparing=preparing)
        if self.warm is not None and job_spec is not None:
            self._prepare_warm(self.warm, context, job_spec)

    def _prepare_warm(self, pool: WarmPool, context: JobContext, spec: ContainerSpec) -> None:
        """Starts a warm container for the tenant's next job while its row is held shared, and
        only if its account is active and still holds the network slot the job ran on: the
        release of an unused network and an account's erasure remove the network under the
        same row's lock (any worker's), so none is made on a network being removed, nor for
        an account being erased."""
        with session_scope() as session:
            tenant = session.scalars(
                select(Tenant)
                .where(Tenant.id == context.tenant_id)
                .with_for_update(read=True)
                .execution_options(populate_existing=True)
            ).first()
            if (
                tenant is None
                or tenant.status != TenantStatus.ACTIVE
                or tenant.subnet_index != context.subnet_index
            ):
                return
            pool.prepare(spec)

    # --- steps ------------------------------------------------------------------------

    def _spec(
        self,
        context: JobContext,
        owner_kind: OwnerKind,
        bundle_env: dict[str, str],
        network: TenantNetwork,
        mounts: list[Mount],
    ) -> ContainerSpec:
        return container_spec(
            self.runner,
            self.settings,
            tenant_id=context.tenant_id,
            owner_kind=owner_kind,
            owner_id=str(context.job_id),
            bundle_env=bundle_env,
            network=network,
            mounts=mounts,
            limits=context.limits,
        )

    def _fill_candle_cache(
        self, context: JobContext, network: TenantNetwork, deadline: float
    ) -> RunReport | None:
        """Brings the shared cache to the candles the job needs, within the job's own time
        and cancellable like it; None when nothing was missing. Waits only for fills of the
        same pairs, and only as long as the job's time allows. A strategy's startup candles
        before the range are filled too: without them freqtrade would start later, by as
        much as the cache happens to lack."""
        start, end = parse_timerange(context.config.timerange)
        exchange, timeframe = context.config.exchange, context.config.timeframe
        if context.strategy_name is not None and context.strategy_source is not None:
            startup = declared_startup_candles(context.strategy_source, context.strategy_name)
            start = first_startup_day(start, timeframe, startup)
        source = self.settings.market_data_source
        if source is DataSource.RECORDED:
            # Checked at submission too; the range here includes the startup candles.
            with session_scope() as session:
                try:
                    recorded.require_covered(
                        session,
                        exchange,
                        list(context.config.pairs),
                        timeframe,
                        *recorded.day_bounds(start, end),
                    )
                except Invalid as refused:
                    raise CacheFillError(refused.detail) from None
        # Rows of a former cache volume describe files this one lacks: their pairs are filled
        # again (a job reading the read-only cache would fail on them).
        volume = self.settings.candle_volume
        created_at = self.runner.volume_created_at(volume)
        with session_scope() as session:
            forgotten = candle_cache.forget_filled_before(session, created_at, source=source.value)
        if forgotten:
            log.warning(
                "candle cache: %d rows of %s recorded before volume %s was created (%s) "
                "forgotten: their candles are filled again",
                forgotten,
                source.value,
                volume,
                created_at.isoformat(),
            )

        def missing(session: Session, pairs: list[str]) -> candle_cache.FillRequest | None:
            return candle_cache.missing(
                session, exchange, pairs, timeframe, start, end, source=source.value
            )

        while True:
            with session_scope() as session:
                fill = missing(session, list(context.config.pairs))
                if fill is None:
                    return None
                if candle_cache.try_lock_pairs(
                    session, exchange, timeframe, list(fill.pairs), source=source.value
                ):
                    # Exact now that no one else fills these pairs.
                    fill = missing(session, list(fill.pairs))
                    if fill is None:
                        return None
                    return self._run_fill(session, context, network, fill, deadline)
            if self._cancel_requested(context.job_id):
                return _ended_without_container(Outcome.CANCELLED)
            if time.monotonic() >= deadline:
                return _ended_without_container(Outcome.TIMED_OUT)
            time.sleep(FILL_LOCK_RETRY_SECONDS)

    def _run_fill(
        self,
        session: Session,
        context: JobContext,
        network: TenantNetwork,
        fill: candle_cache.FillRequest,
        deadline: float,
    ) -> RunReport:
        fill_config = parse_job_config(
            "cache-fill",
            {
                "exchange": fill.exchange,
                "pairs": list(fill.pairs),
                "timeframe": fill.timeframe,
                "timerange": fill.timerange,
            },
        )
        bundle = build_job_bundle(
            "cache-fill",
            fill_config,
            None,
            None,
            self.gateway_url,
            run_id=f"fill-{context.job_id}",
            paths=self.container_paths,
        )
        capture = self._capture()
        spec = self._spec(
            context,
            "cache-fill",
            encode_bundle(bundle),
            network,
            [Mount(self.settings.candle_volume, "/candles", read_only=False)],
        )
        report = self._supervise(context, spec, capture, deadline, on_output=lambda: None)
        if report.outcome in (Outcome.CANCELLED, Outcome.TIMED_OUT):
            return report
        if report.outcome is not Outcome.EXITED or report.exit_code != 0:
            cause = capture.last_error_line() or report.outcome.value
            raise CacheFillError(
                f"market data for {', '.join(fill.pairs)} could not be prepared: {cause}"
            )
        candle_cache.record_fill(session, fill)
        return report

    def _supervise(
        self,
        context: JobContext,
        spec: ContainerSpec,
        capture: LogCapture,
        deadline: float,
        *,
        on_output: Callable[[], None],
        warm_id: str | None = None,
        detachable: bool = False,
    ) -> RunReport:
        """Runs a container of the job (its cache fill's or its own) within the job's time,
        the job marked running in it, its usage saved and its cancel honoured; `detachable`,
        left running if the worker stops (a cache fill is seen to its end: the job's own
        container alone can be adopted)."""
        return run_container(
            self.runner,
            spec,
            capture,
            max_seconds=_remaining(deadline),
            on_started=lambda container_id: self._mark_running(context.job_id, container_id),
            on_output=on_output,
            cancel_requested=lambda: self._cancel_requested(context.job_id),
            on_sample=self._save_sample(context.job_id),
            warm_id=warm_id,
            detach_requested=(lambda: self._detach_requested(context.job_id))
            if detachable
            else None,
        )

    def _mark_running(self, job_id: uuid.UUID, container_id: str) -> None:
        with session_scope() as session:
            self._own(session, job_id)
            jobs.mark_running(session, job_id, container_id)

    def _cancel_requested(self, job_id: uuid.UUID) -> bool:
        with session_scope() as session:
            job = session.get(Job, job_id)
            return job is not None and job.cancel_requested

    def _run_job_container(
        self, context: JobContext, network: TenantNetwork, volume: str, deadline: float
    ) -> tuple[RunReport, LogCapture, ContainerSpec, WarmContainer | None]:
        bundle = build_job_bundle(
            context.kind.value,
            context.config,
            context.strategy_name,
            context.strategy_source,
            self.gateway_url,
            run_id=str(context.job_id),
            job_workers=context.job_workers,
            paths=self.container_paths,
        )
        mounts = [
            Mount(volume, "/freqtrade/user_data", read_only=False),
            Mount(self.settings.candle_volume, "/candles", read_only=True),
        ]
        spec = self._spec(context, "job", encode_bundle(bundle), network, mounts)
        capture = self._capture()
        on_output = self._log_writer(context.job_id, capture, first_seq=1)
        pool = self.warm
        warm = pool.take(spec) if pool is not None else None
        try:
            report = self._supervise(
                context,
                spec,
                capture,
                deadline,
                on_output=on_output,
                warm_id=warm.container_id if warm is not None else None,
                detachable=True,
            )
        except Detached:
            if pool is not None and warm is not None:
                pool.leave_running(warm.container_id)
            raise
        except BaseException:
            if pool is not None and warm is not None:
                pool.release(warm.container_id)
            raise
        if pool is not None and warm is not None:
            pool.release(warm.container_id)
        return report, capture, spec, warm

    def _log_writer(
        self, job_id: uuid.UUID, capture: LogCapture, *, first_seq: int
    ) -> Callable[[], None]:
        """Stores the capture's new text as the job's next log chunk."""
        seq = itertools.count(first_seq)

        def on_output() -> None:
            text = capture.take_pending()
            if text:
                with session_scope() as session:
                    try:
                        # Shared: a take-over waits for this chunk, then counts it.
                        self._own(session, job_id, share=True)
                    except NotOwned:
                        return  # the next owner reads the output again from its first line
                    jobs.append_log(session, job_id, next(seq), text)

        return on_output

    def _adopt(self, job_id: uuid.UUID, container_id: str) -> None:
        """Sees to its end a job container that an earlier worker started and left running
        (it stopped for an upgrade, or died): within what is left of the job's time, its output
        read again from the first line without storing twice what was stored, its usage the
        container's own counters. The job ends as if its first worker had seen it through."""
        with session_scope() as session:
            job = self._own(session, job_id)
            context = _load(session, job, self.settings)
            stored_chars, last_seq = jobs.log_progress(session, job_id)
            elapsed = (utcnow() - (job.started_at or utcnow())).total_seconds()
            saved_cpu, saved_memory = job.cpu_seconds, job.memory_max_bytes
        log.info("job %s: adopting its running container %s", job_id, container_id)
        capture = self._capture()
        capture.resume_after(stored_chars)
        try:
            report = supervise(
                self.runner,
                container_id,
                capture,
                memory_limit_bytes=context.limits.memory_bytes,
                max_seconds=max(1, math.ceil(context.max_seconds - elapsed)),
                on_output=self._log_writer(job_id, capture, first_seq=last_seq + 1),
                cancel_requested=lambda: self._cancel_requested(job_id),
                on_sample=self._save_sample(job_id),
                detach_requested=lambda: self._detach_requested(job_id),
            )
        except Detached as detached:
            log.info("job %s: %s", job_id, detached)
            return
        except Exception:
            if self._holds(job_id):
                self.runner.remove(container_id)
            log.exception("job %s crashed in the worker", job_id)
            self._finish(job_id, JobStatus.FAILED, error="internal error while running the job")
            raise
        self.runner.remove(container_id)
        # The counters of a container that ended before it was adopted read nothing.
        cpu = max(report.cpu_seconds or Decimal(0), saved_cpu or Decimal(0)) or None
        memory = max(report.memory_max_bytes or 0, saved_memory or 0) or None
        report = dataclasses.replace(report, cpu_seconds=cpu, memory_max_bytes=memory)
        self._record(context, report, capture, None, preparing=False)

    def _record(
        self,
        context: JobContext,
        report: RunReport,
        capture: LogCapture,
        window: CgroupWindow | None,
        *,
        preparing: bool,
    ) -> None:
        """Records how the job ended; `preparing` when it ended while its market data was
        being prepared."""
        status, error, summary = job_ending(
            report,
            capture,
            kind=context.kind,
            max_seconds=context.max_seconds,
            memory_bytes=context.limits.memory_bytes,
            result_max_bytes=self.settings.job_result_max_bytes,
            preparing=preparing,
        )
        with session_scope() as session:
            job = self._own(session, context.job_id)
            if summary is not None:
                jobs.store_result(session, job.id, summary)
                if capture.archive is not None:
                    jobs.store_archive(
                        session, job.id, capture.archive.filename, capture.archive.content
                    )
            cpu = report.cpu_seconds
            if window is not None and metering.tenant_ran_alone(
                session, job.tenant_id, job.id, window.start, window.end
            ):
                cpu = window.cpu_seconds
            jobs.record_usage(job, cpu, report.memory_max_bytes)
            jobs.advance(job, status, exit_code=report.exit_code, error=error)
            try:
                with session.begin_nested():
                    metering.record_job_usage(session, job, cpu, report.memory_max_bytes)
            except Invalid as refused:
                log.error("job %s not metered: %s", job.id, refused.detail)
        log.info("job %s ended %s", context.job_id, status.value)

    def _finish(self, job_id: uuid.UUID, status: JobStatus, *, error: str) -> None:
        """Ends a job that has no report to record; its usage is its last saved sample."""
        with session_scope() as session:
            try:
                job = self._own(session, job_id)
            except NotOwned as lost:
                log.warning("job %s not ended here: %s", job_id, lost)
                return
            if not JobStatus(job.status).is_final:
                jobs.advance(job, status, error=error)
                metering.record_ended_job_usage(session, job, None, None)

    def _save_sample(self, job_id: uuid.UUID) -> Callable[[Usage], None]:
        """Saves a container's usage on its job every few seconds: what the job is billed if
        the worker dies before the end."""
        due = time.monotonic()

        def save(usage: Usage) -> None:
            nonlocal due
            if time.monotonic() < due:
                return
            due = time.monotonic() + SAMPLE_SAVE_SECONDS
            with session_scope() as session:
                try:
                    job = self._own(session, job_id)
                except NotOwned:
                    return
                if not JobStatus(job.status).is_final:
                    jobs.record_usage(job, cpu_decimal(usage), usage.memory_max_bytes)

        return save

    def _capture(self) -> LogCapture:
        return output_capture(self.settings)


class CacheFillError(Exception):
    pass


def job_ending(
    report: RunReport,
    capture: LogCapture,
    *,
    kind: JobKind,
    max_seconds: int,
    memory_bytes: int,
    result_max_bytes: int,
    preparing: bool = False,
) -> tuple[JobStatus, str | None, BaseModel | None]:
    """How a job whose container ended as `report` says ends: its final status, the error
    shown to the client, and its validated result summary (a success only)."""
    if report.outcome is Outcome.CANCELLED:
        return JobStatus.CANCELLED, "cancelled at the client's request", None
    if report.outcome is Outcome.TIMED_OUT:
        error = f"stopped after its maximum duration of {max_seconds} s" + (
            ", while its market data was being prepared" if preparing else ""
        )
        return JobStatus.TIMED_OUT, error, None
    if report.outcome is Outcome.OOM_KILLED:
        error = (
            f"killed: memory use exceeded the plan's limit of {memory_bytes // (1024 * 1024)} MiB"
        )
        return JobStatus.OOM_KILLED, error, None
    if report.exit_code != 0:
        return JobStatus.FAILED, exit_error(report.exit_code, capture.tail), None
    summary = parse_result_line(capture.result_line, kind=kind.value, max_bytes=result_max_bytes)
    if summary is None:
        return JobStatus.FAILED, "the job produced no valid result summary", None
    return JobStatus.SUCCEEDED, None, summary


def _remaining(deadline: float) -> int:
    """Whole seconds left before `deadline`, at least one."""
    return max(1, math.ceil(deadline - time.monotonic()))


def _ended_without_container(outcome: Outcome) -> RunReport:
    return RunReport(outcome, None, None, None, container_id="")


def _with_fill(report: RunReport, fill: RunReport | None) -> RunReport:
    """The job's report with the usage of the cache fill it caused added: that tenant pays
    for its own market data."""
    if fill is None:
        return report
    cpu = None
    if report.cpu_seconds is not None or fill.cpu_seconds is not None:
        cpu = (report.cpu_seconds or Decimal(0)) + (fill.cpu_seconds or Decimal(0))
    memory = max(report.memory_max_bytes or 0, fill.memory_max_bytes or 0) or None
    return dataclasses.replace(report, cpu_seconds=cpu, memory_max_bytes=memory)
