"""The export of an account: one zip of everything it holds, for the client's rights of access
and portability (`GET /api/v1/account/export`, the page /app/account/data).

    README.txt
    account.json                      the account, its users, billing identity, plan, billing
                                      status and PayPal subscriptions
    strategies/<name>/strategy.json   a strategy, and v<N>.py: every version stored
    jobs/<id>/job.json                config, status, timings, usage; with result.json (the
                                      stored summary), log.txt and the result file while kept
    bots/<id>/bot.json                with trades.json and log.txt
    invoices/invoices.json            the invoices and credit notes, and each one's PDF as
    invoices/<number>.pdf             issued
    usage.json                        each month's consumption, overage and what was billed
    audit.json                        the account's audit log: actions, times, addresses

The zip is written as it is sent: never whole in memory nor on disk. Every read is bounded
(a page of rows, a slice of a file) and runs in a short transaction of its own, so a slow
download holds no database connection. An account's data is bounded by its plan's quotas;
one holding more than `MAX_EXPORT_BYTES` is refused before anything is sent.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fta.access.models import SpendingCap, UsagePeriod
from fta.access.usage import usage_summary
from fta.accounts.models import Tenant, User
from fta.accounts.service import Principal, get_tenant
from fta.audit import service as audit
from fta.audit.models import AuditEvent
from fta.billing.invoices import service as invoices
from fta.billing.invoices.models import Invoice
from fta.billing.models import UsageBill
from fta.billing.paypal.models import Subscription
from fta.bots.models import Bot, BotLog, BotRun, BotTrade
from fta.errors import Conflict, RetryLater
from fta.jobs.models import Job, JobArchive, JobLogChunk, JobResult
from fta.plans.models import Plan
from fta.strategies.models import Strategy, StrategyVersion

# A unit of work: a session whose transaction ends with the block.
UnitOfWork = Callable[[], AbstractContextManager[Session]]

FORMAT_VERSION = 1
# Stored data past which an export is refused: far beyond what a plan's quotas let an
# account keep (job output, strategies), so only a fault or an operator's hand gets there.
MAX_EXPORT_BYTES = 4 << 30
# Rows read per transaction, bytes of a stored file read per transaction, and how much of
# the zip is gathered before it is handed to the response.
PAGE_ROWS = 500
SLICE_BYTES = 1 << 20
SEND_BYTES = 256 << 10
# Exports made at once: one per account, a few in all (each reads the database a while).
PER_ACCOUNT = 1
IN_ALL = 4
RETRY_AFTER_SECONDS = 30

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

README = """\
fta — export of your account / export de votre compte

account.json        the account, its users, billing identity, plan and billing status
                    le compte, ses utilisateurs, l'identité de facturation, l'offre, l'état
strategies/         every version of every strategy (v1.py, v2.py...) and their metadata
                    chaque version de chaque stratégie, et leurs métadonnées
jobs/<id>/          each job: job.json, result.json, log.txt and its result file while kept
                    chaque job : sa configuration, son résultat, son journal, son fichier
bots/<id>/          each bot: bot.json, trades.json (simulated trades), log.txt
                    chaque bot : sa configuration, ses trades simulés, son journal
invoices/           invoices and credit notes as issued (PDF), and invoices.json
                    factures et avoirs tels qu'émis (PDF)
usage.json          each month's usage and what was billed beyond the plan
                    la consommation de chaque mois et ce qui a été facturé en plus de l'offre
audit.json          the account's audit log: actions, times and IP addresses
                    le journal d'audit du compte : actions, dates et adresses IP

Times are UTC (ISO 8601), amounts in euros or euro cents as named.
Les dates sont en UTC (ISO 8601), les montants en euros ou en centimes comme indiqué.
"""


class ExportTooLarge(Conflict):
    title = "Export too large"


class ExportBusy(RetryLater):
    title = "Export in progress"


# --- how many at once --------------------------------------------------------------------


class ExportLease:
    """One export's place; `release` is idempotent."""

    def __init__(self, slots: ExportSlots, tenant_id: str) -> None:
        self._slots = slots
        self._tenant_id = tenant_id
        self._released = False

    def release(self) -> None:
        with self._slots.lock:
            if self._released:
                return
            self._released = True
            self._slots.running[self._tenant_id] -= 1
            if not self._slots.running[self._tenant_id]:
                del self._slots.running[self._tenant_id]


class ExportSlots:
    def __init__(self, per_account: int = PER_ACCOUNT, in_all: int = IN_ALL) -> None:
        self.per_account = per_account
        self.in_all = in_all
        self.lock = threading.Lock()
        self.running: dict[str, int] = {}

    def acquire(self, tenant_id: str) -> ExportLease:
        with self.lock:
            if self.running.get(tenant_id, 0) >= self.per_account:
                raise ExportBusy(
                    "an export of your account is already being made: wait for it to finish",
                    RETRY_AFTER_SECONDS,
                )
            if sum(self.running.values()) >= self.in_all:
                raise ExportBusy(
                    "several exports are being made right now: try again in a moment",
                    RETRY_AFTER_SECONDS,
                )
            self.running[tenant_id] = self.running.get(tenant_id, 0) + 1
            return ExportLease(self, tenant_id)


SLOTS = ExportSlots()


# --- before the first byte ---------------------------------------------------------------


@dataclass(frozen=True)
class PreparedExport:
    tenant_id: str
    filename: str
    made_at: datetime


def stored_bytes(session: Session, tenant_id: str) -> int:
    """What the account's stored files and texts take: the bulk of its export."""
    own_jobs = select(Job.id).where(Job.tenant_id == tenant_id)
    own_bots = select(Bot.id).where(Bot.tenant_id == tenant_id)
    parts = [
        select(func.sum(func.octet_length(StrategyVersion.source)))
        .join(Strategy, Strategy.id == StrategyVersion.strategy_id)
        .where(Strategy.tenant_id == tenant_id),
        select(func.sum(func.octet_length(JobLogChunk.text))).where(
            JobLogChunk.job_id.in_(own_jobs)
        ),
        select(func.sum(JobArchive.size)).where(JobArchive.job_id.in_(own_jobs)),
        select(func.sum(func.octet_length(BotLog.text))).where(BotLog.bot_id.in_(own_bots)),
        select(func.count() * 400).where(BotTrade.bot_id.in_(own_bots)),
        select(func.sum(func.octet_length(Invoice.pdf))).where(Invoice.tenant_id == tenant_id),
    ]
    return sum(int(session.scalar(part) or 0) for part in parts)


def prepare_export(
    session: Session, principal: Principal, tenant_id: str, ip: str | None, now: datetime
) -> PreparedExport:
    """Checks that the account's export is within bounds and records it in the audit log
    (the caller commits before the zip is sent)."""
    tenant = get_tenant(session, tenant_id)
    size = stored_bytes(session, tenant.id)
    if size > MAX_EXPORT_BYTES:
        raise ExportTooLarge(
            f"your account holds {size} bytes, more than an export carries "
            f"({MAX_EXPORT_BYTES}): delete old jobs' results, or ask support for a copy"
        )
    audit.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant.id,
        action="account.export",
        ip=ip,
    )
    return PreparedExport(
        tenant_id=tenant.id,
        filename=f"fta-export-{tenant.id}-{now:%Y%m%d-%H%M%S}.zip",
        made_at=now,
    )


# --- the zip -----------------------------------------------------------------------------


class _Sink:
    """Where the zip is written: gathers the bytes until they are sent. Not seekable, so the
    zip's entries carry their sizes after their data."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.pending = 0
        self.total = 0

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        self.pending += len(data)
        self.total += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        self.pending = 0
        return data


Entry = tuple[str, Iterable[bytes]]


def stream_export(unit: UnitOfWork, prepared: PreparedExport) -> Iterator[bytes]:
    """The account's zip, piece by piece."""
    sink = _Sink()
    stamp = _zip_time(prepared.made_at)
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, chunks in _entries(unit, prepared):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with archive.open(info, "w") as entry:
                for chunk in chunks:
                    entry.write(chunk)
                    if sink.pending >= SEND_BYTES:
                        yield sink.take()
            if sink.total > MAX_EXPORT_BYTES + (64 << 20):
                # Grown past the bound since it was checked: stop rather than run on.
                raise ExportTooLarge("the account's data grew past what an export carries")
            if sink.pending:
                yield sink.take()
    yield sink.take()


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, 0)


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_plain).encode() + b"\n"


def _plain(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not exported")


def _segment(name: str) -> str:
    """A name as one path segment of the zip: no separator, no dot-only name."""
    safe = _UNSAFE.sub("_", name)[:100].strip(".")
    return safe or "_"


def _entries(unit: UnitOfWork, prepared: PreparedExport) -> Iterator[Entry]:
    tenant_id = prepared.tenant_id
    yield "README.txt", [README.encode()]
    with unit() as session:
        account = _account(session, tenant_id, prepared.made_at)
    yield "account.json", [_json(account)]
    yield from _strategies(unit, tenant_id)
    yield from _jobs(unit, tenant_id)
    yield from _bots(unit, tenant_id)
    yield from _invoices(unit, tenant_id)
    with unit() as session:
        usage = _usage(session, tenant_id, prepared.made_at)
    yield "usage.json", [_json(usage)]
    yield "audit.json", _json_array(_audit_events(unit, tenant_id))


def _json_array(items: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """A JSON array written item by item."""
    yield b"["
    first = True
    for item in items:
        yield (b"\n  " if first else b",\n  ") + json.dumps(
            item, ensure_ascii=False, default=_plain
        ).encode()
        first = False
    yield b"\n]\n"


# --- account ----------------------------------------------------------------------------


def _account(session: Session, tenant_id: str, now: datetime) -> dict[str, Any]:
    tenant = session.get_one(Tenant, tenant_id)
    pending = session.get(Plan, tenant.pending_plan_id) if tenant.pending_plan_id else None
    users = session.scalars(
        select(User).where(User.tenant_id == tenant_id).order_by(User.created_at)
    ).all()
    subscriptions = session.scalars(
        select(Subscription)
        .where(Subscription.tenant_id == tenant_id)
        .order_by(Subscription.created_at)
    ).all()
    cap = session.get(SpendingCap, tenant_id)
    return {
        "format": FORMAT_VERSION,
        "exported_at": now,
        "tenant": {
            "id": tenant.id,
            "display_name": tenant.display_name,
            "status": tenant.status,
            "created_at": tenant.created_at,
        },
        "users": [
            {
                "email": user.email,
                "role": user.role,
                "created_at": user.created_at,
                "email_verified_at": user.email_verified_at,
                "password_changed_at": user.password_changed_at,
            }
            for user in users
        ],
        "billing_identity": {
            "customer_type": tenant.customer_type,
            "legal_name": tenant.legal_name,
            "address_line1": tenant.address_line1,
            "address_line2": tenant.address_line2,
            "postcode": tenant.postcode,
            "city": tenant.city,
            "country": tenant.country,
            "siren": tenant.siren,
            "vat_number": tenant.vat_number,
            "vat_number_status": tenant.vat_number_status,
            "vat_number_checked_at": tenant.vat_number_checked_at,
            "vat_number_check_ref": tenant.vat_number_check_ref,
        },
        "plan": {
            "code": tenant.plan.code,
            "name": tenant.plan.name,
            "pending_change": (
                {"code": pending.code, "name": pending.name, "from": tenant.pending_plan_period}
                if pending is not None
                else None
            ),
        },
        "billing": {
            "status": tenant.billing_status,
            "trial_ends_at": tenant.trial_ends_at,
            "grace_until": tenant.grace_until,
            "spending_cap_eur_ht": cap.cap_eur_ht if cap is not None else None,
            "subscriptions": [
                {
                    "paypal_subscription_id": s.paypal_subscription_id,
                    "plan_code": s.plan_code,
                    "status": s.status,
                    "price_ht_cents": s.price_ht_cents,
                    "tax_percent": s.tax_percent,
                    "paid_through": s.paid_through,
                    "created_at": s.created_at,
                    "updated_at": s.updated_at,
                }
                for s in subscriptions
            ],
        },
    }


# --- strategies -------------------------------------------------------------------------


def _strategies(unit: UnitOfWork, tenant_id: str) -> Iterator[Entry]:
    with unit() as session:
        strategies = session.execute(
            select(Strategy.id, Strategy.name, Strategy.created_at, Strategy.deleted_at)
            .where(Strategy.tenant_id == tenant_id)
            .order_by(Strategy.created_at, Strategy.id)
        ).all()
    used: set[str] = set()
    for strategy_id, name, created_at, deleted_at in strategies:
        folder = _segment(name)
        if folder in used:  # a hidden strategy keeps its name, which a live one may reuse
            folder = f"{folder}-{str(strategy_id)[:8]}"
        used.add(folder)
        with unit() as session:
            versions = session.execute(
                select(
                    StrategyVersion.id,
                    StrategyVersion.version,
                    StrategyVersion.sha256,
                    StrategyVersion.created_at,
                )
                .join(Strategy, Strategy.id == StrategyVersion.strategy_id)
                .where(StrategyVersion.strategy_id == strategy_id, Strategy.tenant_id == tenant_id)
                .order_by(StrategyVersion.version)
            ).all()
        metadata = {
            "id": strategy_id,
            "name": name,
            "created_at": created_at,
            "deleted_at": deleted_at,
            "versions": [
                {
                    "version": v.version,
                    "file": f"v{v.version}.py",
                    "sha256": v.sha256,
                    "created_at": v.created_at,
                }
                for v in versions
            ],
        }
        yield f"strategies/{folder}/strategy.json", [_json(metadata)]
        for version in versions:
            yield (
                f"strategies/{folder}/v{version.version}.py",
                _version_source(unit, tenant_id, version.id),
            )


def _version_source(unit: UnitOfWork, tenant_id: str, version_id: uuid.UUID) -> Iterator[bytes]:
    with unit() as session:
        source = session.scalar(
            select(StrategyVersion.source)
            .join(Strategy, Strategy.id == StrategyVersion.strategy_id)
            .where(StrategyVersion.id == version_id, Strategy.tenant_id == tenant_id)
        )
    if source is not None:  # deleted meanwhile: an empty file
        yield source.encode()


# --- jobs -------------------------------------------------------------------------------


def _ids(unit: UnitOfWork, query: Any) -> list[uuid.UUID]:
    with unit() as session:
        return list(session.scalars(query))


def _jobs(unit: UnitOfWork, tenant_id: str) -> Iterator[Entry]:
    job_ids = _ids(
        unit, select(Job.id).where(Job.tenant_id == tenant_id).order_by(Job.created_at, Job.id)
    )
    for job_id in job_ids:
        with unit() as session:
            row = session.execute(
                select(Job, Strategy.name, StrategyVersion.version)
                .outerjoin(StrategyVersion, StrategyVersion.id == Job.strategy_version_id)
                .outerjoin(Strategy, Strategy.id == StrategyVersion.strategy_id)
                .where(Job.id == job_id, Job.tenant_id == tenant_id)
            ).first()
            if row is None:
                continue
            job, strategy_name, version = row
            summary = session.scalar(select(JobResult.summary).where(JobResult.job_id == job_id))
            archive = session.execute(
                select(JobArchive.filename, JobArchive.size, JobArchive.sha256).where(
                    JobArchive.job_id == job_id
                )
            ).first()
            described = _job(job, strategy_name, version, archive)
        folder = f"jobs/{job_id}"
        yield f"{folder}/job.json", [_json(described)]
        if summary is not None:
            yield f"{folder}/result.json", [_json(summary)]
        yield f"{folder}/log.txt", _log_texts(unit, JobLogChunk, JobLogChunk.job_id, job_id)
        if archive is not None:
            yield f"{folder}/{_segment(archive.filename)}", _archive(unit, job_id, archive.size)


def _job(job: Job, strategy_name: str | None, version: int | None, archive: Any) -> dict[str, Any]:
    run_seconds = None
    if job.started_at is not None and job.finished_at is not None:
        run_seconds = int((job.finished_at - job.started_at).total_seconds())
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "strategy": (
            {"name": strategy_name, "version": version} if strategy_name is not None else None
        ),
        "config": job.config,
        "max_seconds": job.max_seconds,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "exit_code": job.exit_code,
        "error": job.error,
        "market_data_source": job.market_data_source,
        "usage": {
            "cpu_seconds": job.cpu_seconds,
            "memory_max_bytes": job.memory_max_bytes,
            "run_seconds": run_seconds,
        },
        "output_pruned_at": job.output_pruned_at,
        "result_file": (
            {"name": _segment(archive.filename), "size": archive.size, "sha256": archive.sha256}
            if archive is not None
            else None
        ),
    }


def _log_texts(
    unit: UnitOfWork, model: Any, owner_column: Any, owner: uuid.UUID
) -> Iterator[bytes]:
    """A job's or bot's log chunks in order, a page per transaction."""
    after = -1
    while True:
        with unit() as session:
            rows = session.execute(
                select(model.seq, model.text)
                .where(owner_column == owner, model.seq > after)
                .order_by(model.seq)
                .limit(PAGE_ROWS)
            ).all()
        for _, text in rows:
            yield text.encode()
        if len(rows) < PAGE_ROWS:
            return
        after = rows[-1][0]


def _archive(unit: UnitOfWork, job_id: uuid.UUID, size: int) -> Iterator[bytes]:
    """The job's stored result file, a slice per transaction."""
    offset = 0
    while offset < size:
        with unit() as session:
            part = session.scalar(
                select(func.substring(JobArchive.content, offset + 1, SLICE_BYTES)).where(
                    JobArchive.job_id == job_id
                )
            )
        if not part:  # pruned meanwhile
            return
        yield bytes(part)
        offset += len(part)


# --- bots -------------------------------------------------------------------------------


def _bots(unit: UnitOfWork, tenant_id: str) -> Iterator[Entry]:
    bot_ids = _ids(
        unit, select(Bot.id).where(Bot.tenant_id == tenant_id).order_by(Bot.created_at, Bot.id)
    )
    for bot_id in bot_ids:
        with unit() as session:
            row = session.execute(
                select(Bot, Strategy.name, StrategyVersion.version)
                .join(StrategyVersion, StrategyVersion.id == Bot.strategy_version_id)
                .join(Strategy, Strategy.id == StrategyVersion.strategy_id)
                .where(Bot.id == bot_id, Bot.tenant_id == tenant_id)
            ).first()
            if row is None:
                continue
            bot, strategy_name, version = row
            runs = session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(BotRun.cpu_seconds), 0),
                    func.max(BotRun.memory_max_bytes),
                ).where(BotRun.bot_id == bot_id)
            ).one()
            described = _bot(bot, strategy_name, version, runs)
        folder = f"bots/{bot_id}"
        yield f"{folder}/bot.json", [_json(described)]
        yield f"{folder}/trades.json", _json_array(_trades(unit, bot_id))
        yield f"{folder}/log.txt", _log_texts(unit, BotLog, BotLog.bot_id, bot_id)


def _bot(bot: Bot, strategy_name: str, version: int, runs: Any) -> dict[str, Any]:
    count, cpu_seconds, memory_max_bytes = runs
    return {
        "id": bot.id,
        "name": bot.name,
        "strategy": {"name": strategy_name, "version": version},
        "config": bot.config,
        "desired_state": bot.desired_state,
        "actual_state": bot.actual_state,
        "created_at": bot.created_at,
        "updated_at": bot.updated_at,
        "deleted_at": bot.deleted_at,
        "started_at": bot.started_at,
        "restarts": bot.restarts,
        "last_heartbeat_at": bot.last_heartbeat_at,
        "last_error": bot.last_error,
        "status": bot.status,
        "status_at": bot.status_at,
        "usage": {
            "runs": count,
            "cpu_seconds": cpu_seconds,
            "memory_max_bytes": memory_max_bytes,
        },
    }


def _trades(unit: UnitOfWork, bot_id: uuid.UUID) -> Iterator[dict[str, Any]]:
    after = -1
    while True:
        with unit() as session:
            trades = session.scalars(
                select(BotTrade)
                .where(BotTrade.bot_id == bot_id, BotTrade.trade_id > after)
                .order_by(BotTrade.trade_id)
                .limit(PAGE_ROWS)
            ).all()
        for trade in trades:
            yield {
                "trade_id": trade.trade_id,
                "pair": trade.pair,
                "is_open": trade.is_open,
                "open_date": trade.open_date,
                "close_date": trade.close_date,
                "amount": trade.amount,
                "stake_amount": trade.stake_amount,
                "open_rate": trade.open_rate,
                "close_rate": trade.close_rate,
                "profit_abs": trade.profit_abs,
                "profit_ratio": trade.profit_ratio,
                "updated_at": trade.updated_at,
            }
        if len(trades) < PAGE_ROWS:
            return
        after = trades[-1].trade_id


# --- invoices, usage, audit ---------------------------------------------------------------


def _invoices(unit: UnitOfWork, tenant_id: str) -> Iterator[Entry]:
    with unit() as session:
        issued = invoices.list_invoices(session, tenant_id)
        listed = [
            {
                "number": invoice.number,
                "kind": invoice.kind,
                "credits": invoice.credits_invoice_id,
                "issued_at": invoice.issued_at,
                "due_on": invoice.due_on,
                "period_start": invoice.period_start,
                "period_end": invoice.period_end,
                "currency": invoice.currency,
                "total_ht_cents": invoice.total_ht_cents,
                "total_vat_cents": invoice.total_vat_cents,
                "total_ttc_cents": invoice.total_ttc_cents,
                "vat_rate": invoice.vat_rate,
                "vat_regime": invoice.vat_regime,
                "payment_ref": invoice.payment_ref,
                "file": f"{_segment(invoice.number)}.pdf",
            }
            for invoice in reversed(issued)
        ]
        files = [(f"{_segment(invoice.number)}.pdf", invoice.id) for invoice in reversed(issued)]
    if not listed:
        return
    yield "invoices/invoices.json", [_json(listed)]
    for name, invoice_id in files:
        yield f"invoices/{name}", _invoice_pdf(unit, tenant_id, invoice_id)


def _invoice_pdf(unit: UnitOfWork, tenant_id: str, invoice_id: uuid.UUID) -> Iterator[bytes]:
    """One PDF as issued (a few hundred kilobytes at most), through the invoices' service."""
    with unit() as session:
        pdf = invoices.invoice_pdf(session, tenant_id, invoice_id).pdf
    yield pdf


def _usage(session: Session, tenant_id: str, now: datetime) -> list[dict[str, Any]]:
    tenant = session.get_one(Tenant, tenant_id)
    periods = session.scalars(
        select(UsagePeriod.period)
        .where(UsagePeriod.tenant_id == tenant_id)
        .order_by(UsagePeriod.period)
    ).all()
    months = []
    for period in periods:
        summary = usage_summary(session, tenant, period, now)
        bill = session.get(UsageBill, (tenant_id, period))
        number = (
            session.scalar(select(Invoice.number).where(Invoice.id == bill.invoice_id))
            if bill is not None and bill.invoice_id is not None
            else None
        )
        used = summary.consumption
        months.append(
            {
                "period": period,
                "status": "closed" if summary.closed else "open",
                "plan": {"code": summary.plan.code, "name": summary.plan.name},
                "consumption": {
                    "cpu_hours": used.cpu_hours,
                    "ram_gb_hours": used.ram_gb_hours,
                    "job_minutes": used.job_minutes,
                    "bot_hours": used.bot_hours,
                    "events": used.events,
                },
                "included_cpu_hours": summary.included_cpu_hours,
                "overage_eur_ht": summary.overage.amount_eur,
                "billed": (
                    {"amount_ht_cents": bill.amount_ht_cents, "invoice": number}
                    if bill is not None
                    else None
                ),
            }
        )
    return months


def _audit_events(unit: UnitOfWork, tenant_id: str) -> Iterator[dict[str, Any]]:
    after = 0
    while True:
        with unit() as session:
            events = session.scalars(
                select(AuditEvent)
                .where(AuditEvent.tenant_id == tenant_id, AuditEvent.id > after)
                .order_by(AuditEvent.id)
                .limit(PAGE_ROWS)
            ).all()
        for event in events:
            yield {
                "at": event.created_at,
                "actor": event.actor,
                "action": event.action,
                "target": event.target,
                "ip": event.ip,
            }
        if len(events) < PAGE_ROWS:
            return
        after = events[-1].id
