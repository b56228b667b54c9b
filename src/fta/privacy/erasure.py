"""Deleting an account, at its owner's request (the page /app/account/data: the password typed
again, and the account's e-mail address typed as confirmation).

The portal only marks the account `erasing`, and from that moment it is refused everywhere:
log-in, every API call and page (`fta.accounts.service`), its sessions and personal tokens
revoked, its queued jobs cancelled and its running ones stopped; the bot supervisor stops
the bots of an account that is not active. The worker's periodic round then erases it, each
step idempotent, so that a round cut short (a crash, a bot still stopping, Docker or PayPal
unavailable) is taken up where it stopped by the next one:

1. PayPal bills it no more: its live subscriptions are cancelled through the billing service
   (one still awaiting the buyer's approval is cancelled should it ever be approved); while
   PayPal cannot be reached the next steps go on, and the last one waits;
2. nothing of it runs: the round waits until its jobs have ended and its bots are stopped;
3. its remaining containers (warm ones) go, then its network, and its subnet slot is freed;
4. its data volume goes, then its disk (the tenant disk helper's `remove`: unmounted, the
   image deleted);
5. its rows go: strategies and versions, jobs with their logs, results and result files,
   bots with their logs, trades and runs (metered first), spending cap, usage alerts, users
   with their sessions, personal tokens and second factor, the mails waiting for their
   addresses, the throttles' rows keyed by those addresses;
6. once PayPal bills it no more and no payment of it waits for its invoice, the account's
   row is anonymised (name and billing identity cleared) and marked `erased`.

Kept, by law or as evidence, and what they need: invoices and credit notes (ten years; each
carries its own snapshot of the client's identity, so the account's own is not needed), the
usage ledger they were billed from (events, months, usage bills: amounts and dates under the
account's id), PayPal's records (subscriptions reduced to their ids and status, payments,
disputes, webhook deliveries as received) and the audit log (append-only: user ids and IP
addresses, kept as evidence of the operations).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session, aliased

from fta.access.models import QuotaOverride, SpendingCap, TenantDiskUsage
from fta.accounts import service as accounts
from fta.accounts import throttle
from fta.accounts.models import (
    CLOSED,
    AuthSession,
    BillingStatus,
    PersonalToken,
    Tenant,
    TenantStatus,
    User,
)
from fta.accounts.service import Principal
from fta.audit import service as audit
from fta.audit.models import AuditEvent
from fta.billing import subscriptions
from fta.billing.alerts.service import raise_alert, settle
from fta.billing.metering import meter_run
from fta.billing.models import UsageAlert
from fta.billing.paypal import PayPal
from fta.billing.paypal.models import Payment, PaymentKind, Subscription
from fta.bots.models import AT_REST, Bot, BotLog, BotRun, BotTrade
from fta.db import Base, session_scope, utcnow
from fta.errors import Conflict, Forbidden, Invalid
from fta.jobs import service as jobs
from fta.jobs.models import Job, JobArchive, JobLogChunk, JobResult
from fta.mail.models import OutboxMail
from fta.runtime import JobRunner
from fta.strategies.models import Strategy, StrategyUpload, StrategyVersion

log = logging.getLogger(__name__)

# How often the worker takes pending erasures further, and how long an erasure may stay stuck
# before the operators get an alert.
ERASURE_CHECK_SECONDS = 30.0
STUCK_AFTER = timedelta(hours=1)
# One erasure at a time per account (a transaction-scoped advisory lock, keyed by the id).
ERASURE_LOCK = 0x66746572  # "fter"
# Rows of jobs or bots deleted per transaction.
BATCH = 100
JOB_CANCELLED = "cancelled: the account is being deleted"

# Rows of the account's users, by their `user_id`; rows keyed by a digest of their address.
USER_TABLES = ("auth_sessions", "personal_tokens", "recovery_codes")
ADDRESS_KEYED_TABLES = ("login_failures", "password_reset_requests")
# The tables an erasure empties of the account's rows, and those it keeps (see the module's
# docstring); tests/unit/test_erasure_tables.py holds every table that refers to an account
# or its users to one of the two.
ERASED_TABLES = frozenset(
    {
        "strategies",
        "strategy_versions",
        "strategy_uploads",
        "jobs",
        "job_log_chunks",
        "job_results",
        "job_archives",
        "bots",
        "bot_logs",
        "bot_trades",
        "bot_runs",
        "usage_spending_caps",
        "usage_alerts",
        "quota_overrides",
        "tenant_disk_usage",
        "users",
        "mail_outbox",
        *USER_TABLES,
        *ADDRESS_KEYED_TABLES,
    }
)
KEPT_TABLES = frozenset(
    {
        "tenants",
        "invoices",
        "invoice_lines",
        "invoice_handoffs",
        "usage_events",
        "usage_periods",
        "usage_bills",
        "subscriptions",
        "payments",
        "payment_issues",
        "paypal_events",
        "billing_alerts",
        "audit_events",
    }
)
# The billing identity and the rest the account's row no longer needs once erased.
CLEARED_FIELDS = (
    "legal_name",
    "address_line1",
    "address_line2",
    "postcode",
    "city",
    "country",
    "siren",
    "vat_number",
    "vat_number_status",
    "vat_number_checked_at",
    "vat_number_check_ref",
    "pending_plan_id",
    "pending_plan_period",
    "network_used_at",
    "suspension_reason",
    "suspended_at",
)
# What a kept subscription still says once its account is erased (PayPal's full state names
# the buyer).
SUBSCRIPTION_KEPT = ("id", "status", "plan_id", "create_time", "status_update_time")


class ErasureWaits(Exception):
    """The erasure cannot go further for now; the message says why."""


# --- the owner's request (portal) --------------------------------------------------------


def request_erasure(
    session: Session, principal: Principal, *, password: str, confirmation: str, ip: str | None
) -> None:
    """Marks the caller's account for erasure, once the caller typed its e-mail address and
    its password again; refuses it at once everywhere. The worker does the rest."""
    if principal.tenant_id is None:
        raise Forbidden("platform administrators have no account to delete")
    if principal.personal_token:
        raise Forbidden("log in with your password to delete your account")
    user = session.get(User, principal.user_id)
    if user is None or user.tenant_id != principal.tenant_id:
        raise Forbidden("this account no longer exists")
    if confirmation.strip().lower() != user.email:
        raise Invalid("type your account's e-mail address exactly, to confirm")
    accounts.confirm_password(session, principal, password, ip)
    tenant = session.scalars(
        select(Tenant).where(Tenant.id == principal.tenant_id).with_for_update()
    ).one()
    if tenant.status in CLOSED:
        raise Conflict("this account is already being deleted")
    tenant.status = TenantStatus.ERASING
    now = utcnow()
    users = select(User.id).where(User.tenant_id == tenant.id).scalar_subquery()
    for credential in (AuthSession, PersonalToken):
        session.execute(
            update(credential)
            .where(credential.user_id.in_(users), credential.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    jobs.cancel_tenant_jobs(session, tenant.id, JOB_CANCELLED)
    audit.record(
        session,
        actor=str(user.id),
        tenant_id=tenant.id,
        action="account.erasure_requested",
        ip=ip,
    )


# --- the worker's round ------------------------------------------------------------------


def pending_erasures(session: Session, tenants: Collection[str] | None = None) -> list[str]:
    query = select(Tenant.id).where(Tenant.status == TenantStatus.ERASING)
    if tenants is not None:
        query = query.where(Tenant.id.in_(list(tenants)))
    return list(session.scalars(query.order_by(Tenant.id)))


def erase_pending(
    runner: JobRunner,
    paypal: PayPal | None,
    now: datetime,
    *,
    tenants: Collection[str] | None = None,
) -> list[str]:
    """Takes every account being deleted (of `tenants`, when given) as far as it goes now;
    returns those erased. `paypal`: None where PayPal is not configured (an account with a
    live subscription then waits, and an operator alert says why)."""
    with session_scope() as session:
        pending = pending_erasures(session, tenants)
    erased = []
    for tenant_id in pending:
        try:
            if erase_account(runner, paypal, tenant_id, now):
                erased.append(tenant_id)
        except Exception as error:
            # A bot still stopping, Docker or PayPal unavailable: the next round goes on.
            log.warning("account %s: erasure goes on later: %s", tenant_id, error)
            with session_scope() as session:
                _alert_when_stuck(session, tenant_id, error, now)
    return erased


def erase_account(runner: JobRunner, paypal: PayPal | None, tenant_id: str, now: datetime) -> bool:
    """Takes one account being deleted as far as it goes now; True once it is erased. Raises
    ErasureWaits (or the runtime's, the database's or PayPal's error) where it stopped."""
    with session_scope() as guard:
        if not guard.scalar(
            select(func.pg_try_advisory_xact_lock(ERASURE_LOCK, func.hashtext(tenant_id)))
        ):
            return False  # being erased by another round right now
        status = guard.scalar(select(Tenant.status).where(Tenant.id == tenant_id))
        if status != TenantStatus.ERASING:
            return False
        billing: Exception | None = None
        try:
            _cancel_billing(paypal, tenant_id, now)
        except Exception as error:  # PayPal unreachable: the data goes all the same
            billing = error
        _wait_until_nothing_runs(tenant_id)
        _remove_docker_resources(runner, tenant_id)
        _erase_rows(tenant_id, now)
        if billing is not None:
            raise billing
        with session_scope() as session:
            _anonymise(session, tenant_id, now)
    log.info("account %s erased", tenant_id)
    return True


def _cancel_billing(paypal: PayPal | None, tenant_id: str, now: datetime) -> None:
    with session_scope() as session:
        live = session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(
                Subscription.tenant_id == tenant_id,
                Subscription.status.in_(list(subscriptions.LIVE)),
            )
        )
    if not live:
        return
    if paypal is None:
        raise ErasureWaits("PayPal is not configured: its live subscription cannot be cancelled")
    with session_scope() as session:
        still_live = subscriptions.cancel_subscriptions(session, paypal, tenant_id, now)
    if still_live:
        raise ErasureWaits(f"PayPal still shows {still_live} live subscription(s)")


def _wait_until_nothing_runs(tenant_id: str) -> None:
    with session_scope() as session:
        running = jobs.cancel_tenant_jobs(session, tenant_id, JOB_CANCELLED)
        # Locked: a bot that a worker is starting right now (its row held) is counted once
        # that worker has recorded its container.
        locked = session.execute(
            select(Bot.actual_state, Bot.container_id)
            .where(Bot.tenant_id == tenant_id)
            .with_for_update()
        ).all()
        bots = sum(
            1 for state, container in locked if state not in AT_REST or container is not None
        )
    if running or bots:
        raise ErasureWaits(f"{running} job(s) still ending, {bots} bot(s) still stopping")


def _remove_docker_resources(runner: JobRunner, tenant_id: str) -> None:
    """What is left is idle: warm containers waiting for a next job, or leftovers."""
    for container in runner.list_managed():
        if container.tenant == tenant_id:
            runner.remove(container.id)
    with session_scope() as session:
        tenant = session.scalars(
            select(Tenant).where(Tenant.id == tenant_id).with_for_update()
        ).one()
        runner.remove_tenant_network(tenant_id)
        if tenant.subnet_index is not None:
            log.info("tenant %s gives back network slot %s", tenant_id, tenant.subnet_index)
        accounts.assign_network_slot(tenant, None)
    runner.remove_tenant_volume(tenant_id)


def _erase_rows(tenant_id: str, now: datetime) -> None:
    """Deletes the account's rows, a batch of jobs or bots per transaction."""
    while True:
        with session_scope() as session:
            job_ids = list(
                session.scalars(select(Job.id).where(Job.tenant_id == tenant_id).limit(BATCH))
            )
            for job_child in (JobLogChunk, JobResult, JobArchive):
                session.execute(delete(job_child).where(job_child.job_id.in_(job_ids)))
            session.execute(delete(Job).where(Job.id.in_(job_ids)))
        if len(job_ids) < BATCH:
            break
    while True:
        with session_scope() as session:
            bot_ids = list(
                session.scalars(select(Bot.id).where(Bot.tenant_id == tenant_id).limit(BATCH))
            )
            # Each run's usage is in the ledger before the run's row goes.
            for run in session.scalars(select(BotRun).where(BotRun.bot_id.in_(bot_ids))):
                try:
                    with session.begin_nested():
                        meter_run(session, run, now)
                except Invalid as error:
                    log.error("bot run %s not metered: %s", run.container_id, error.detail)
            for bot_child in (BotLog, BotTrade, BotRun):
                session.execute(delete(bot_child).where(bot_child.bot_id.in_(bot_ids)))
            session.execute(delete(Bot).where(Bot.id.in_(bot_ids)))
        if len(bot_ids) < BATCH:
            break
    with session_scope() as session:
        strategies = select(Strategy.id).where(Strategy.tenant_id == tenant_id)
        session.execute(delete(StrategyVersion).where(StrategyVersion.strategy_id.in_(strategies)))
        for owned in (
            Strategy,
            StrategyUpload,
            SpendingCap,
            UsageAlert,
            QuotaOverride,
            TenantDiskUsage,
        ):
            session.execute(delete(owned).where(owned.tenant_id == tenant_id))
        users = session.execute(
            select(User.id, User.email).where(User.tenant_id == tenant_id)
        ).all()
        user_ids = [user_id for user_id, _ in users]
        emails = [email for _, email in users]
        for table in _tables(USER_TABLES):
            session.execute(delete(table).where(table.c.user_id.in_(user_ids)))
        keys = [throttle.account_key(email) for email in emails]
        for table in _tables(ADDRESS_KEYED_TABLES):
            session.execute(delete(table).where(table.c.account_key.in_(keys)))
        session.execute(delete(OutboxMail).where(OutboxMail.to_address.in_(emails)))
        session.execute(delete(User).where(User.id.in_(user_ids)))
        for subscription in session.scalars(
            select(Subscription).where(Subscription.tenant_id == tenant_id)
        ):
            state = subscription.last_state if isinstance(subscription.last_state, dict) else {}
            subscription.last_state = {k: state[k] for k in SUBSCRIPTION_KEPT if k in state}


def _tables(names: Collection[str]) -> list[Table]:
    """The tables of these names that the schema has."""
    return [Base.metadata.tables[name] for name in names if name in Base.metadata.tables]


def _payments_waiting(session: Session, tenant_id: str) -> bool:
    """Whether a payment of the account's subscriptions still waits for its invoice (or its
    credit note), which the billing round makes from the account's billing identity."""
    sale = aliased(Payment)
    waiting = session.scalar(
        select(Payment.id)
        .join(sale, (sale.sale_id == Payment.sale_id) & (sale.kind == PaymentKind.SALE))
        .join(Subscription, Subscription.paypal_subscription_id == sale.paypal_subscription_id)
        .where(Subscription.tenant_id == tenant_id, Payment.invoiced_at.is_(None))
        .limit(1)
    )
    return waiting is not None


def _anonymise(session: Session, tenant_id: str, now: datetime) -> None:
    tenant = session.scalars(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).one()
    if _payments_waiting(session, tenant_id):
        raise ErasureWaits("a payment waits for its invoice, made from the billing identity")
    tenant.display_name = ""
    for field in CLEARED_FIELDS:
        setattr(tenant, field, None)
    tenant.billing_status = BillingStatus.CANCELLED
    tenant.status = TenantStatus.ERASED
    audit.record(session, actor="worker", tenant_id=tenant_id, action="account.erased")
    settle(session, _alert_key(tenant_id), now)


def _alert_key(tenant_id: str) -> str:
    return f"account-erasure:{tenant_id}"


def _alert_when_stuck(session: Session, tenant_id: str, error: Exception, now: datetime) -> None:
    """Tells the operators about an erasure that has not gone through for a while."""
    requested = session.scalar(
        select(func.max(AuditEvent.created_at)).where(
            AuditEvent.tenant_id == tenant_id, AuditEvent.action == "account.erasure_requested"
        )
    )
    if requested is None or now - requested >= STUCK_AFTER:
        raise_alert(
            session,
            key=_alert_key(tenant_id),
            kind="account-erasure",
            message=f"the deleted account's erasure does not go through: {error}",
            now=now,
            tenant_id=tenant_id,
        )
