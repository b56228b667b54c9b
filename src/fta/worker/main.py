"""The worker process: wakes on Postgres NOTIFY (polling as a fallback), claims jobs, runs them;
beside it, a thread converges bots (fta.worker.bots)."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import FrameType

import httpx
import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from fta.access.disks import record_disk_usage
from fta.billing.paypal import paypal_from_settings
from fta.billing.periodic import run_round as billing_round
from fta.bots.eur_rates import refresh_eur_rates
from fta.db import session_scope, utcnow
from fta.jobs import market_pairs
from fta.jobs import service as jobs
from fta.jobs.models import Job
from fta.jobs.retention import (
    MAX_PRUNE_BATCHES,
    PRUNE_BATCH,
    PRUNE_CHECK_SECONDS,
    prune_job_outputs,
)
from fta.jobs.service import NOTIFY_CHANNEL
from fta.mail import service as mail
from fta.operators.operations import record_disk_check, record_heartbeat
from fta.privacy.erasure import ERASURE_CHECK_SECONDS, erase_pending
from fta.runtime import ContainerRuntimeError, JobRunner
from fta.runtime.choice import job_runner
from fta.settings import Settings, get_settings
from fta.worker import leases
from fta.worker.bots import BotSupervisor
from fta.worker.handlers import JobHandler
from fta.worker.leases import Lease
from fta.worker.metrics_server import serve_metrics
from fta.worker.network_slots import NETWORK_CHECK_SECONDS, release_unused_networks
from fta.worker.reconciler import reconcile
from fta.worker.tenant_cpu import tenant_cpu_seconds
from fta.worker.warm_pool import WarmPool

log = logging.getLogger(__name__)

# How often the outbox is handed to the mail server.
MAIL_CHECK_SECONDS = 10.0
# How often the worker records its heartbeat (fta.operators.operations.SILENT_AFTER).
HEARTBEAT_SECONDS = 15.0
GATEWAY_PROBE_SECONDS = 3.0
# How often the worker measures the tenant disks for the operator's console.
DISK_USAGE_SECONDS = 300.0


class Worker:
    def __init__(
        self,
        runner: JobRunner,
        settings: Settings,
        max_parallel: int | None = None,
    ) -> None:
        self.runner = runner
        self.settings = settings
        self.name = socket.gethostname()
        self.stopping = threading.Event()
        # This process's lease (fta.worker.leases): what it claims or adopts is its own while
        # the lease is live; renewed in a thread of its own until the worker stops.
        self.lease = Lease(self.name, settings.worker_lease_seconds)
        self.lease.acquire()
        threading.Thread(
            target=self.lease.keep, args=(self.stopping,), name="lease", daemon=True
        ).start()
        self.warm: WarmPool | None = None
        if settings.warm_containers > 0:
            root, mount = settings.tenant_cgroup_root, Path(settings.host_cgroup_mount)
            self.warm = WarmPool(
                runner,
                capacity=settings.warm_containers,
                idle_seconds=settings.warm_idle_seconds,
                tenant_cpu=lambda tenant_id: tenant_cpu_seconds(tenant_id, root, mount),
                now=utcnow,
                worker=lambda: self.lease.worker_id,
            )
        self.started_at = utcnow()
        self.handler = JobHandler(runner, settings, self.warm, self.stopping, self.lease)
        self.bots = BotSupervisor(runner, settings, self.lease)
        # The job slots: this worker's pool, shared fairly between tenants.
        self.max_parallel = max_parallel or settings.job_slots
        self.pool = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="job")
        self.in_flight: dict[uuid.UUID, Future[None]] = {}
        self._lock = threading.Lock()

    def claim_and_start(self) -> int:
        """Starts as many queued jobs as there are free slots; returns how many. Claims none
        once this worker's lease has run out (it was paused past it, or the database did not
        answer its renewals): the jobs it claims are recorded as its lease's."""
        started = 0
        while len(self.in_flight) < self.max_parallel and self.lease.held():
            owner = self.lease.worker_id
            with session_scope() as session:
                if not leases.is_live(session, owner):
                    break
                job = self.claim_next_job(session)
                job_id = job.id if job else None
                if job is not None:
                    job.worker_id = owner
            if job_id is None:
                break
            with self._lock:
                future = self.pool.submit(self.handler.run, job_id, owner)
                self.in_flight[job_id] = future
            future.add_done_callback(partial(self._done, job_id))
            started += 1
        return started

    def claim_next_job(self, session: Session) -> Job | None:
        """The next queued job for this worker's slots (fta.jobs.scheduling), now claimed."""
        return jobs.claim_next_job(session, slots=self.max_parallel)

    def _done(self, job_id: uuid.UUID, _: Future[None]) -> None:
        with self._lock:
            self.in_flight.pop(job_id, None)

    def reconcile(self) -> None:
        """Adopts or fails what workers whose leases ran out left; nothing while this worker's
        own lease has run out."""
        if not self.lease.held():
            return
        owner = self.lease.worker_id
        with self._lock:
            in_flight = frozenset(self.in_flight)
        held = self.warm.held() if self.warm is not None else frozenset()
        reconcile(
            self.runner,
            in_flight,
            warm=held,
            adopt=partial(self.adopt, owner=owner),
            worker_id=owner,
        )

    def adopt(self, job_id: uuid.UUID, container_id: str, owner: str | None = None) -> None:
        """Supervises a job an earlier worker left running in its container, in a job slot;
        `owner`: the lease id it was taken over under."""
        with self._lock:
            future = self.pool.submit(self.handler.adopt, job_id, container_id, owner)
            self.in_flight[job_id] = future
        future.add_done_callback(partial(self._done, job_id))

    def billing_round(self) -> None:
        billing_round(session_scope, utcnow())

    def release_networks(self) -> list[str]:
        """Removes the networks that tenants do not use and frees their slots."""
        return release_unused_networks(self.runner, self.settings, utcnow())

    def prune_job_outputs(self) -> int:
        """Deletes finished jobs' logs and result files past their plans' retention or quota,
        one batch per transaction; returns how many jobs' output it deleted."""
        pruned = 0
        for _ in range(MAX_PRUNE_BATCHES):
            with session_scope() as session:
                batch = self.prune_batch(session)
            pruned += batch
            if batch < PRUNE_BATCH:
                break
        if pruned:
            log.info("deleted the logs and result files of %d finished jobs", pruned)
        return pruned

    def prune_batch(self, session: Session) -> int:
        """Deletes one batch of finished jobs' output (fta.jobs.retention); returns its size."""
        return prune_job_outputs(session, utcnow())

    def deliver_mail(self) -> None:
        with session_scope() as session:
            mail.deliver(session, self.settings)

    def erase_accounts(self) -> list[str]:
        """Takes the accounts their owners deleted further (fta.privacy.erasure); returns
        those erased now."""
        paypal = paypal_from_settings()
        return erase_pending(self.runner, paypal if paypal.client.configured else None, utcnow())

    def heartbeat(self) -> None:
        """Records this round for the operator's console, with whether the engine answered
        (the portal cannot ask it: it never reaches Docker)."""
        try:
            containers, error = len(self.runner.list_managed()), None
        except Exception as failure:  # any failure to list is the engine not answering
            containers, error = None, f"{type(failure).__name__}: {failure}"
        with self._lock:
            in_flight = len(self.in_flight)
        with session_scope() as session:
            record_heartbeat(
                session,
                self.name,
                started_at=self.started_at,
                docker_error=error,
                containers=containers,
                jobs_in_flight=in_flight,
                gateway_error=self.gateway_health(),
                now=utcnow(),
            )

    def measure_disks(self) -> None:
        """Records how full each account's disk is, or why the disks could not be measured,
        after this worker's heartbeat (whose row it completes)."""
        try:
            disks, error = self.runner.tenant_disk_usage(), None
        except ContainerRuntimeError as failure:
            disks, error = [], str(failure)
        now = utcnow()
        with session_scope() as session:
            if error is None:
                record_disk_usage(session, disks, now)
            record_disk_check(session, self.name, error=error, now=now)

    def gateway_url(self) -> str:
        settings = self.settings
        return (
            settings.gateway_url or f"http://{settings.gateway_container}:{settings.gateway_port}"
        )

    def gateway_health(self) -> str | None:
        """None when the market-data gateway answers its health check; otherwise why not."""
        url = f"{self.gateway_url()}/healthz"
        try:
            response = httpx.get(url, timeout=GATEWAY_PROBE_SECONDS)
        except httpx.HTTPError as failure:
            return f"{type(failure).__name__}: {failure}"
        return None if response.status_code == 200 else f"HTTP {response.status_code}"

    def run_forever(self) -> None:
        url = make_url(self.settings.database_url.get_secret_value())
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.reconcile()
        supervisor = threading.Thread(
            target=self.bots.run_forever, args=(self.stopping,), name="bots", daemon=True
        )
        supervisor.start()
        next_reconcile = time.monotonic() + self.settings.reconcile_interval_seconds
        next_network = time.monotonic() + NETWORK_CHECK_SECONDS
        next_erasure = time.monotonic()
        next_billing = next_mail = next_prune = next_markets = next_rates = time.monotonic()
        next_heartbeat = next_disks = time.monotonic()
        # Proxy mode: the exchanges' market lists and the euro rates of bots' stake currencies,
        # asked of the gateway by its container name on the control network.
        proxy_mode = self.settings.market_data_mode == "proxy"
        gateway = self.gateway_url()
        with psycopg.connect(conninfo, autocommit=True) as listener:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            log.info("worker ready")
            while not self.stopping.is_set():
                try:
                    if time.monotonic() >= next_heartbeat:
                        next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
                        self.heartbeat()
                    if time.monotonic() >= next_disks:
                        next_disks = time.monotonic() + DISK_USAGE_SECONDS
                        self.measure_disks()
                    self.claim_and_start()
                    if self.warm is not None:
                        self.warm.expire()
                    if time.monotonic() >= next_reconcile:
                        self.reconcile()
                        next_reconcile = time.monotonic() + self.settings.reconcile_interval_seconds
                    if time.monotonic() >= next_billing:
                        next_billing = time.monotonic() + self.settings.billing_check_seconds
                        self.billing_round()
                    if time.monotonic() >= next_prune:
                        next_prune = time.monotonic() + PRUNE_CHECK_SECONDS
                        self.prune_job_outputs()
                    if time.monotonic() >= next_network:
                        next_network = time.monotonic() + NETWORK_CHECK_SECONDS
                        self.release_networks()
                    if time.monotonic() >= next_erasure:
                        next_erasure = time.monotonic() + ERASURE_CHECK_SECONDS
                        self.erase_accounts()
                    if time.monotonic() >= next_mail:
                        next_mail = time.monotonic() + MAIL_CHECK_SECONDS
                        self.deliver_mail()
                    if proxy_mode and time.monotonic() >= next_markets:
                        next_markets = time.monotonic() + market_pairs.refresh_market_lists(gateway)
                    if proxy_mode and time.monotonic() >= next_rates:
                        next_rates = time.monotonic() + refresh_eur_rates(gateway)
                except Exception:
                    # A failed round (database or Docker hiccup) must not stop the worker.
                    log.exception("worker round failed; retrying")
                    self.stopping.wait(self.settings.worker_poll_seconds)
                # Returns on the first notification or after the poll interval.
                for _ in listener.notifies(timeout=self.settings.worker_poll_seconds, stop_after=1):
                    pass
        self.shutdown(supervisor)

    def shutdown(self, supervisor: threading.Thread | None = None) -> None:
        """Stops as for an upgrade: running jobs left in their containers, warm ones removed,
        the bots' stops in progress seen through, then the lease ended, so that the next
        worker takes over at once rather than after the lease time."""
        self.stopping.set()
        try:
            self.lease.renew()  # for the time the stops below take
        except Exception:
            log.exception("lease not renewed for the stop")
        self.pool.shutdown(wait=True)
        if self.warm is not None:
            self.warm.drain()
        if supervisor is not None:
            supervisor.join(timeout=self.settings.bot_stop_timeout_seconds + 30)
        try:
            self.lease.release()
        except Exception:
            log.exception("lease not ended: the others take over once it runs out")


def run_worker() -> None:
    settings = get_settings()
    if settings.runner == "ecs":
        # A warm container takes its job through an exec, which ECS tasks are not given.
        settings = settings.model_copy(update={"warm_containers": 0})
    runner = job_runner(settings)
    worker = Worker(runner, settings)

    def _stop(signum: int, _: FrameType | None) -> None:
        log.info("signal %s: leaving running jobs to the next worker, claiming no new ones", signum)
        worker.stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if settings.metrics_port:
        serve_metrics(settings.metrics_port)
    worker.run_forever()
