"""The platform's state as Prometheus metrics (text exposition format 0.0.4), read from the
database at each scrape: queues per account, jobs' outcomes and durations, bots, workers'
heartbeats, accounts' disks, billing's alerts and PayPal's webhooks. The worker serves them
on the control network only (`fta.worker.metrics_server`); deploy/prometheus/ holds the
alerting rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fta.access import disks as tenant_disks
from fta.audit.models import AuditEvent
from fta.billing.alerts.models import BillingAlert
from fta.billing.paypal.models import PayPalEvent
from fta.bots.models import ActualState, Bot, DesiredState
from fta.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from fta.operators.models import WorkerHeartbeat
from fta.prometheus import Family

# Upper bounds of the job duration histogram, in seconds.
DURATION_BUCKETS = (10, 30, 60, 300, 900, 1800, 3600, 7200, 21600)
WEBHOOK_REFUSED = "billing.webhook_refused"


def collect(session: Session, now: datetime) -> list[Family]:
    return [
        *_queues(session),
        *_jobs(session),
        *_bots(session),
        *_workers(session, now),
        _disks(session),
        *_billing(session),
    ]


def _queues(session: Session) -> list[Family]:
    queued = Family("fta_jobs_queued", "gauge", "Jobs waiting for a slot, per account.")
    running = Family("fta_jobs_running", "gauge", "Jobs starting or running, per account.")
    waiting = func.count().filter(Job.status == JobStatus.QUEUED)
    active = func.count().filter(Job.status.in_(list(ACTIVE_STATUSES)))
    for tenant, q, r in session.execute(
        select(Job.tenant_id, waiting, active)
        .where(Job.status.in_([JobStatus.QUEUED, *ACTIVE_STATUSES]))
        .group_by(Job.tenant_id)
        .order_by(Job.tenant_id)
    ):
        queued.add(q, tenant=tenant)
        running.add(r, tenant=tenant)
    return [queued, running]


def _jobs(session: Session) -> list[Family]:
    finished = Family("fta_jobs_finished_total", "counter", "Jobs ended, by kind and final status.")
    duration = Family("fta_job_duration_seconds", "histogram", "Run time of ended jobs, by kind.")
    for kind, status, count in session.execute(
        select(Job.kind, Job.status, func.count())
        .where(Job.finished_at.is_not(None))
        .group_by(Job.kind, Job.status)
        .order_by(Job.kind, Job.status)
    ):
        finished.add(count, kind=kind, status=status)
    seconds = func.extract("epoch", Job.finished_at - Job.started_at)
    bucket_columns = [func.count().filter(seconds <= bound) for bound in DURATION_BUCKETS]
    for kind, count, total, *buckets in session.execute(
        select(Job.kind, func.count(), func.coalesce(func.sum(seconds), 0), *bucket_columns)
        .where(Job.finished_at.is_not(None), Job.started_at.is_not(None))
        .group_by(Job.kind)
        .order_by(Job.kind)
    ):
        for bound, in_bucket in zip(DURATION_BUCKETS, buckets, strict=True):
            duration.add(in_bucket, "_bucket", kind=kind, le=str(bound))
        duration.add(count, "_bucket", kind=kind, le="+Inf")
        duration.add(float(total), "_sum", kind=kind)
        duration.add(count, "_count", kind=kind)
    return [finished, duration]


def _bots(session: Session) -> list[Family]:
    wanted = Family("fta_bots_wanted_running", "gauge", "Bots their clients want running.")
    running = Family("fta_bots_running", "gauge", "Bots whose freqtrade runs.")
    crashed = Family("fta_bots_crashed", "gauge", "Bots wanted running whose container crashed.")
    live = Bot.deleted_at.is_(None)
    wants = Bot.desired_state == DesiredState.RUNNING
    wanted.add(session.scalar(select(func.count()).where(live, wants)) or 0)
    running.add(
        session.scalar(select(func.count()).where(live, Bot.actual_state == ActualState.RUNNING))
        or 0
    )
    crashed.add(
        session.scalar(
            select(func.count()).where(live, wants, Bot.actual_state == ActualState.CRASHED)
        )
        or 0
    )
    return [wanted, running, crashed]


def _workers(session: Session, now: datetime) -> list[Family]:
    age = Family(
        "fta_worker_heartbeat_age_seconds", "gauge", "Seconds since each worker's last round."
    )
    docker = Family("fta_worker_docker_up", "gauge", "1 when Docker answered the worker.")
    gateway = Family(
        "fta_worker_gateway_up", "gauge", "1 when the market-data gateway answered the worker."
    )
    disks = Family(
        "fta_worker_tenant_disks_up", "gauge", "1 when the tenant disk helper told its disks."
    )
    for beat in session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.name)):
        age.add((now - beat.beat_at).total_seconds(), worker=beat.name)
        docker.add(int(beat.docker_ok), worker=beat.name)
        gateway.add(int(beat.gateway_ok), worker=beat.name)
        disks.add(int(beat.disks_error is None), worker=beat.name)
    return [age, docker, gateway, disks]


def _disks(session: Session) -> Family:
    nearly_full = Family(
        "fta_tenant_disks_nearly_full",
        "gauge",
        f"Accounts' disks {tenant_disks.NEARLY_FULL_PERCENT} % full or more.",
    )
    nearly_full.add(tenant_disks.count_nearly_full(session))
    return nearly_full


def _billing(session: Session) -> list[Family]:
    alerts = Family(
        "fta_billing_alerts_open",
        "gauge",
        "Open billing alerts, by kind; blocking ones quarantine their item.",
    )
    for kind, blocking, count in session.execute(
        select(BillingAlert.kind, BillingAlert.blocking, func.count())
        .where(BillingAlert.resolved_at.is_(None))
        .group_by(BillingAlert.kind, BillingAlert.blocking)
        .order_by(BillingAlert.kind, BillingAlert.blocking)
    ):
        alerts.add(count, kind=kind, blocking=str(blocking).lower())
    events = Family(
        "fta_paypal_webhook_events_total", "counter", "PayPal events received, by outcome."
    )
    for outcome, count in session.execute(
        select(func.coalesce(PayPalEvent.outcome, "unprocessed"), func.count())
        .group_by(PayPalEvent.outcome)
        .order_by(PayPalEvent.outcome)
    ):
        events.add(count, outcome=outcome)
    refused = Family(
        "fta_paypal_webhooks_refused_total",
        "counter",
        "Deliveries to the webhook whose signature did not verify.",
    )
    refused.add(
        session.scalar(select(func.count()).where(AuditEvent.action == WEBHOOK_REFUSED)) or 0
    )
    return [alerts, events, refused]
