"""Bots: the one facade used by the API (create, read, start, stop, restart, delete) and the
worker (what to reconcile, state transitions, logs, status and trade snapshots).

The API writes only the desired state; the worker writes only the actual state. Deleting a
bot hides it (every route answers 404) and asks the worker to stop and remove its container;
its rows, logs and trade snapshots are kept, like a deleted strategy's versions, so that the
audit log's references stay resolvable.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fta import audit
from fta.access import service as access
from fta.access.quotas import quotas
from fta.accounts import verification
from fta.accounts.models import Tenant, TenantStatus
from fta.accounts.service import Principal, require_active
from fta.bots.models import (
    AT_REST,
    TRANSITIONS,
    ActualState,
    Bot,
    BotLog,
    BotRun,
    BotTrade,
    DesiredState,
)
from fta.bots.snapshots import BotReport, BotStatus, TradeSnapshot
from fta.db import utcnow
from fta.errors import Conflict, Invalid, NotFound, QuotaExceeded
from fta.freqtrade.options import BOT_OPTIONS, BotConfig, parse_bot_config
from fta.jobs.config_errors import describe_config_error
from fta.jobs.market_pairs import require_usable_pairs
from fta.markets import DataSource
from fta.redaction import redact
from fta.settings import get_settings
from fta.strategies.models import Strategy, StrategyVersion
from fta.strategies.service import get_strategy, latest_version

MAX_LOG_CHUNK_CHARS = 64 * 1024
# Older chunks are dropped: a bot runs for months, its log must not grow without bound.
KEPT_LOG_CHUNKS = 2000
BACKOFF_FIRST = timedelta(seconds=10)
BACKOFF_MAX = timedelta(minutes=10)


def _config(session: Session, raw: dict[str, Any]) -> BotConfig:
    try:
        config = parse_bot_config(raw)
    except ValidationError as exc:
        raise Invalid(describe_config_error(exc, "bot", BOT_OPTIONS)) from exc
    require_usable_pairs(session, config.exchange, config.pairs, "bot")
    return config


def _name_free(session: Session, tenant_id: str, name: str, bot_id: uuid.UUID | None) -> None:
    query = select(Bot.id).where(
        Bot.tenant_id == tenant_id, Bot.name == name, Bot.deleted_at.is_(None)
    )
    if bot_id is not None:
        query = query.where(Bot.id != bot_id)
    taken = session.scalars(query).first()
    if taken is not None:
        raise Conflict(f"you already have a bot named {name!r} ({taken}): choose another name")


def _audit(
    session: Session, principal: Principal, tenant_id: str, action: str, bot: Bot, ip: str | None
) -> None:
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=tenant_id,
        action=f"bot.{action}",
        target=str(bot.id),
        ip=ip,
    )


def create_bot(
    session: Session,
    principal: Principal,
    tenant_id: str,
    *,
    name: str,
    strategy_id: uuid.UUID,
    config: dict[str, Any],
    ip: str | None,
) -> Bot:
    """A stopped bot that pins the strategy's current version."""
    bot_config = _config(session, config)
    version = latest_version(session, get_strategy(session, tenant_id, strategy_id))
    _name_free(session, tenant_id, name, None)
    bot = Bot(
        tenant_id=tenant_id,
        name=name,
        strategy_version_id=version.id,
        config=bot_config.model_dump(mode="json"),
        desired_state=DesiredState.STOPPED,
        actual_state=ActualState.STOPPED,
        restarts=0,
    )
    session.add(bot)
    session.flush()
    _audit(session, principal, tenant_id, "create", bot, ip)
    return bot


def update_bot(
    session: Session,
    principal: Principal,
    tenant_id: str,
    bot_id: uuid.UUID,
    *,
    name: str | None,
    strategy_id: uuid.UUID | None,
    config: dict[str, Any] | None,
    ip: str | None,
) -> Bot:
    """Renames it, replaces its config, or pins the current version of a strategy.

    A running bot keeps what it runs until it is restarted.
    """
    bot = _locked_bot(session, tenant_id, bot_id)
    if config is not None:
        bot.config = _config(session, config).model_dump(mode="json")
    if strategy_id is not None:
        bot.strategy_version_id = latest_version(
            session, get_strategy(session, tenant_id, strategy_id)
        ).id
    if name is not None and name != bot.name:
        _name_free(session, tenant_id, name, bot.id)
        bot.name = name
    bot.updated_at = utcnow()
    _audit(session, principal, tenant_id, "update", bot, ip)
    return bot


def get_bot(session: Session, tenant_id: str, bot_id: uuid.UUID) -> Bot:
    """A live bot of this tenant; any other answers NotFound, never its data."""
    bot = session.get(Bot, bot_id)
    if bot is None or bot.tenant_id != tenant_id or bot.deleted_at is not None:
        raise NotFound(f"no bot {bot_id} in your account")
    return bot


def _locked_bot(session: Session, tenant_id: str, bot_id: uuid.UUID) -> Bot:
    bot = session.scalars(select(Bot).where(Bot.id == bot_id).with_for_update()).first()
    if bot is None or bot.tenant_id != tenant_id or bot.deleted_at is not None:
        raise NotFound(f"no bot {bot_id} in your account")
    return bot


def list_bots(session: Session, tenant_id: str) -> list[Bot]:
    return list(
        session.scalars(
            select(Bot)
            .where(Bot.tenant_id == tenant_id, Bot.deleted_at.is_(None))
            .order_by(Bot.created_at)
        )
    )


@dataclass(frozen=True)
class PinnedVersion:
    """The strategy version a bot runs, as the client knows it."""

    strategy_id: uuid.UUID
    strategy_name: str
    version: int
    # The strategy's newest version: a bot pins one version, later uploads do not change it.
    latest_version: int
    strategy_deleted: bool


def pinned_versions(
    session: Session, tenant_id: str, bots: Sequence[Bot]
) -> dict[uuid.UUID, PinnedVersion]:
    """The strategy and version number of each of the tenant's `bots`, by version id."""
    ids = {bot.strategy_version_id for bot in bots}
    if not ids:
        return {}
    rows = session.execute(
        select(
            StrategyVersion.id,
            Strategy.id,
            Strategy.name,
            StrategyVersion.version,
            Strategy.latest_version,
            Strategy.deleted_at,
        )
        .join(Strategy, Strategy.id == StrategyVersion.strategy_id)
        .where(StrategyVersion.id.in_(ids), Strategy.tenant_id == tenant_id)
    )
    return {
        version_id: PinnedVersion(strategy_id, name, version, latest, deleted is not None)
        for version_id, strategy_id, name, version, latest, deleted in rows
    }


def _admit_start(session: Session, tenant_id: str, bot: Bot) -> None:
    """Refuses a start the account's status or plan does not allow.

    The tenant row is locked while counting, so two concurrent starts cannot both take the
    last slot.
    """
    tenant = session.scalars(select(Tenant).where(Tenant.id == tenant_id).with_for_update()).one()
    access.require_start(session, tenant, utcnow())
    require_active(tenant, "bots")
    running = session.scalars(
        select(Bot.name)
        .where(
            Bot.tenant_id == tenant_id,
            Bot.desired_state == DesiredState.RUNNING,
            Bot.deleted_at.is_(None),
            Bot.id != bot.id,
        )
        .order_by(Bot.name)
    ).all()
    limit = quotas(session, tenant, utcnow()).max_bots
    if len(running) >= limit:
        names = f" (running: {', '.join(running)})" if running else ""
        raise QuotaExceeded(
            f"your plan {tenant.plan.name!r} allows {limit} running bot(s) and you have "
            f"{len(running)}{names}: stop one, or upgrade your plan, before starting this one"
        )


def _require_live_market_data() -> None:
    if get_settings().market_data_source is DataSource.RECORDED:
        raise Conflict(
            "bots cannot run while the platform serves recorded market data: recorded history "
            "has no live prices (backtests and hyperopts run on it)"
        )


def start_bot(
    session: Session, principal: Principal, tenant_id: str, bot_id: uuid.UUID, ip: str | None
) -> Bot:
    """Asks for the bot to run; starting a bot that should already run changes nothing."""
    verification.require_verified(session, principal)
    _require_live_market_data()
    bot = _locked_bot(session, tenant_id, bot_id)
    if bot.desired_state == DesiredState.RUNNING:
        return bot
    _admit_start(session, tenant_id, bot)
    _want_running(bot)
    _audit(session, principal, tenant_id, "start", bot, ip)
    return bot


def _want_running(bot: Bot) -> None:
    bot.desired_state = DesiredState.RUNNING
    bot.restarts = 0
    bot.restart_backoff_until = None
    bot.updated_at = utcnow()


def stop_bot(
    session: Session, principal: Principal, tenant_id: str, bot_id: uuid.UUID, ip: str | None
) -> Bot:
    bot = _locked_bot(session, tenant_id, bot_id)
    if bot.desired_state == DesiredState.STOPPED:
        return bot
    bot.desired_state = DesiredState.STOPPED
    bot.restart_requested_at = None
    bot.updated_at = utcnow()
    _audit(session, principal, tenant_id, "stop", bot, ip)
    return bot


def restart_bot(
    session: Session, principal: Principal, tenant_id: str, bot_id: uuid.UUID, ip: str | None
) -> Bot:
    """Restarts a running bot (with its current config and pinned strategy) or starts a
    stopped one; either way the crash back-off starts again from zero."""
    verification.require_verified(session, principal)
    _require_live_market_data()
    bot = _locked_bot(session, tenant_id, bot_id)
    if bot.desired_state == DesiredState.RUNNING:
        tenant = session.get(Tenant, tenant_id)
        if tenant is not None:
            access.require_start(session, tenant, utcnow())
        require_active(tenant, "bots")
        bot.restart_requested_at = utcnow()
    else:
        _admit_start(session, tenant_id, bot)
    _want_running(bot)
    _audit(session, principal, tenant_id, "restart", bot, ip)
    return bot


def delete_bot(
    session: Session, principal: Principal, tenant_id: str, bot_id: uuid.UUID, ip: str | None
) -> None:
    """Hides the bot and frees its name; the worker then stops and removes its container."""
    bot = _locked_bot(session, tenant_id, bot_id)
    now = utcnow()
    bot.deleted_at = now
    bot.desired_state = DesiredState.STOPPED
    bot.restart_requested_at = None
    bot.updated_at = now
    _audit(session, principal, tenant_id, "delete", bot, ip)


def bot_logs(
    session: Session, tenant_id: str, bot_id: uuid.UUID, *, after: int, limit: int
) -> list[BotLog]:
    """Chunks with a sequence number above `after`, oldest first."""
    get_bot(session, tenant_id, bot_id)
    return _chunks_after(session, bot_id, after, limit)


def latest_logs(session: Session, tenant_id: str, bot_id: uuid.UUID, *, limit: int) -> list[BotLog]:
    """The newest `limit` chunks, oldest first."""
    get_bot(session, tenant_id, bot_id)
    newest = session.scalars(
        select(BotLog).where(BotLog.bot_id == bot_id).order_by(BotLog.seq.desc()).limit(limit)
    )
    return list(newest)[::-1]


def _chunks_after(session: Session, bot_id: uuid.UUID, after: int, limit: int) -> list[BotLog]:
    return list(
        session.scalars(
            select(BotLog)
            .where(BotLog.bot_id == bot_id, BotLog.seq > after)
            .order_by(BotLog.seq)
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class LogPoll:
    chunks: list[BotLog]
    # The bot is stopped, or crashed with no restart coming: no new output will arrive.
    at_rest: bool


def poll_logs(
    session: Session, tenant_id: str, bot_id: uuid.UUID, *, after: int, limit: int
) -> LogPoll:
    """One poll of a log follower: new chunks, and whether more can come."""
    bot = get_bot(session, tenant_id, bot_id)
    chunks = _chunks_after(session, bot_id, after, limit)
    at_rest = bot.desired_state == DesiredState.STOPPED and bot.actual_state in AT_REST
    return LogPoll(chunks, at_rest)


def bot_trades(
    session: Session, tenant_id: str, bot_id: uuid.UUID, *, is_open: bool | None, limit: int
) -> list[BotTrade]:
    get_bot(session, tenant_id, bot_id)
    query = select(BotTrade).where(BotTrade.bot_id == bot_id)
    if is_open is not None:
        query = query.where(BotTrade.is_open.is_(is_open))
    return list(
        session.scalars(
            query.order_by(BotTrade.open_date.desc(), BotTrade.trade_id.desc()).limit(limit)
        )
    )


# --- worker side -------------------------------------------------------------------------


def wanted_state(bot: Bot, tenant_status: str) -> DesiredState:
    """What the worker should converge to: deleted bots and suspended accounts run nothing."""
    if (
        bot.deleted_at is None
        and tenant_status == TenantStatus.ACTIVE
        and bot.desired_state == DesiredState.RUNNING
    ):
        return DesiredState.RUNNING
    return DesiredState.STOPPED


def bots_needing_action(session: Session) -> list[tuple[Bot, str]]:
    """Bots whose container does not match what is wanted, with their tenant's status.

    A crashed bot still waiting out its back-off is included: the worker compares
    `restart_backoff_until` with the time.
    """
    out_of_step = or_(
        Bot.desired_state != Bot.actual_state,
        Bot.restart_requested_at.is_not(None),
        and_(Bot.container_id.is_not(None), Bot.actual_state.in_(list(AT_REST))),
        and_(
            or_(Bot.deleted_at.is_not(None), Tenant.status != TenantStatus.ACTIVE),
            Bot.actual_state != ActualState.STOPPED,
        ),
    )
    rows = session.execute(
        select(Bot, Tenant.status)
        .join(Tenant, Tenant.id == Bot.tenant_id)
        .where(out_of_step)
        .order_by(Bot.updated_at)
    ).all()
    return [(bot, status) for bot, status in rows]


def lock_bot(session: Session, bot_id: uuid.UUID) -> Bot | None:
    """The bot row, locked until the caller's transaction ends (whatever its tenant)."""
    return session.scalars(select(Bot).where(Bot.id == bot_id).with_for_update()).first()


def pinned_strategy(session: Session, bot: Bot) -> tuple[str, str]:
    """The class name and source of the strategy version the bot runs."""
    name, source = session.execute(
        select(Strategy.name, StrategyVersion.source)
        .join(Strategy, Strategy.id == StrategyVersion.strategy_id)
        .where(StrategyVersion.id == bot.strategy_version_id)
    ).one()
    return str(name), str(source)


def advance(bot: Bot, state: ActualState, **fields: Any) -> None:
    """Moves a bot along its state machine (`fta.bots.models.TRANSITIONS`); an illegal
    transition is a programming error."""
    current = ActualState(bot.actual_state)
    if state not in TRANSITIONS.get(current, frozenset()):
        raise ValueError(f"bot {bot.id}: illegal transition {current} -> {state}")
    now = utcnow()
    if state is ActualState.STARTING:
        if current is ActualState.CRASHED:
            bot.restarts += 1
        bot.restart_requested_at = None
        bot.last_error = None
    if state is ActualState.RUNNING:
        bot.started_at = now
        bot.restart_backoff_until = None
    if state is ActualState.STOPPED:
        bot.container_id = None
        bot.started_at = None
    if state in (ActualState.STOPPING, ActualState.STOPPED, ActualState.CRASHED):
        bot.api_address = None  # no relay to a container on its way out
    bot.actual_state = state
    bot.updated_at = now
    for name, value in fields.items():
        setattr(bot, name, value)


def record_container(
    session: Session, bot_id: uuid.UUID, container_id: str, api_key_id: str
) -> None:
    """The container created for the starting bot: its own from now on (committed before it
    starts, so that a worker that dies then finds it by the bot's row), and the id of the key
    its API secrets come from."""
    bot = session.get(Bot, bot_id)
    if bot is None:
        raise NotFound(f"no bot {bot_id}")
    bot.container_id = container_id
    bot.api_key_id = api_key_id


def record_report(
    session: Session, bot_id: uuid.UUID, container_id: str, report: BotReport
) -> None:
    """Stores a running bot's periodic report: its status, trades and heartbeat; a bot
    starting in it is running once freqtrade says so. A report of a container the bot no
    longer has is ignored. Locks the bot's row until the caller's transaction ends."""
    bot = lock_bot(session, bot_id)
    if bot is None or bot.container_id != container_id:
        return
    health = report.freqtrade
    if report.status is not None:
        record_status(
            session, bot_id, report.status, freqtrade_state=health.state, whitelist=health.whitelist
        )
    record_trades(session, bot_id, report.trades)
    if health.heartbeat_at is not None:
        bot.last_heartbeat_at = health.heartbeat_at
    if ActualState(bot.actual_state) is ActualState.STARTING and health.state == "RUNNING":
        advance(bot, ActualState.RUNNING)
    if report.error:
        bot.last_error = redact(report.error)


def backoff_delay(restarts: int) -> timedelta:
    """Doubles with each automatic restart since the client's last start, up to a cap."""
    return min(BACKOFF_FIRST * (1 << min(restarts, 16)), BACKOFF_MAX)


def record_crash(bot: Bot, error: str, last_log_lines: str | None, now: datetime) -> None:
    """The container exited on its own or could not start: kept for the client to read, and
    the next automatic start waits out the back-off."""
    advance(
        bot,
        ActualState.CRASHED,
        started_at=None,
        last_error=redact(error)[:4000],
        last_log_lines=redact(last_log_lines)[-MAX_LOG_CHUNK_CHARS:] if last_log_lines else None,
        restart_backoff_until=now + backoff_delay(bot.restarts),
    )


def append_log(session: Session, bot_id: uuid.UUID, text: str) -> int:
    """Stores the next chunk of output (redacted again, capped); returns its sequence number.

    One worker writes a bot's log at a time: the primary key refuses a duplicate number.
    """
    seq = int(
        session.scalar(
            select(func.coalesce(func.max(BotLog.seq), -1) + 1).where(BotLog.bot_id == bot_id)
        )
        or 0
    )
    session.add(BotLog(bot_id=bot_id, seq=seq, text=redact(text[:MAX_LOG_CHUNK_CHARS])))
    session.execute(
        delete(BotLog).where(BotLog.bot_id == bot_id, BotLog.seq <= seq - KEPT_LOG_CHUNKS)
    )
    session.flush()
    return seq


def record_status(
    session: Session,
    bot_id: uuid.UUID,
    status: BotStatus,
    *,
    freqtrade_state: str | None = None,
    whitelist: Sequence[str] = (),
) -> None:
    bot = session.get(Bot, bot_id)
    if bot is None:
        raise NotFound(f"no bot {bot_id}")
    bot.status = {
        **status.model_dump(mode="json"),
        "freqtrade_state": freqtrade_state,
        "whitelist": list(whitelist),
    }
    bot.status_at = utcnow()


def record_trades(session: Session, bot_id: uuid.UUID, trades: Sequence[TradeSnapshot]) -> None:
    """Inserts or overwrites each reported trade; trades not reported stay as they were."""
    if not trades:
        return
    now = utcnow()
    rows = [{"bot_id": bot_id, "updated_at": now, **trade.model_dump()} for trade in trades]
    statement = insert(BotTrade).values(rows)
    updated = {
        column: statement.excluded[column]
        for column in rows[0]
        if column not in ("bot_id", "trade_id")
    }
    session.execute(
        statement.on_conflict_do_update(index_elements=["bot_id", "trade_id"], set_=updated)
    )


def bots_with_containers(session: Session) -> list[uuid.UUID]:
    """Bots the worker believes have a container: it checks each one still runs."""
    return list(
        session.scalars(
            select(Bot.id).where(
                Bot.container_id.is_not(None),
                Bot.actual_state.in_(
                    [ActualState.STARTING, ActualState.RUNNING, ActualState.STOPPING]
                ),
            )
        )
    )


def known_bot_ids(session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `ids` are bots (deleted ones included: their containers are still theirs)."""
    return set(session.scalars(select(Bot.id).where(Bot.id.in_(list(ids))))) if ids else set()


def record_run_usage(
    session: Session,
    bot: Bot,
    container_id: str,
    *,
    cpu_seconds: Decimal,
    memory_max_bytes: int,
    ended: bool = False,
) -> None:
    """Records a usage sample of the bot's container run. Counters only grow: a replayed or
    late sample never lowers what was recorded, and an ended run is never changed again."""
    if cpu_seconds < 0 or memory_max_bytes < 0:
        raise ValueError("usage samples are never negative")
    now = utcnow()
    statement = insert(BotRun).values(
        container_id=container_id,
        bot_id=bot.id,
        tenant_id=bot.tenant_id,
        started_at=bot.started_at or now,
        sampled_at=now,
        ended_at=now if ended else None,
        cpu_seconds=cpu_seconds,
        memory_max_bytes=memory_max_bytes,
    )
    excluded = statement.excluded
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["container_id"],
            set_={
                "sampled_at": excluded.sampled_at,
                "ended_at": excluded.ended_at,
                "cpu_seconds": func.greatest(BotRun.cpu_seconds, excluded.cpu_seconds),
                "memory_max_bytes": func.greatest(
                    BotRun.memory_max_bytes, excluded.memory_max_bytes
                ),
            },
            where=BotRun.ended_at.is_(None),
        )
    )


@dataclass(frozen=True)
class BotUsage:
    cpu_seconds: Decimal
    running_seconds: int
    memory_max_bytes: int


def bot_usage(session: Session, bot_id: uuid.UUID) -> BotUsage:
    """What all of the bot's container runs consumed so far."""
    cpu, seconds, memory = session.execute(
        select(
            func.coalesce(func.sum(BotRun.cpu_seconds), 0),
            func.coalesce(
                func.sum(
                    func.extract(
                        "epoch",
                        func.coalesce(BotRun.ended_at, BotRun.sampled_at) - BotRun.started_at,
                    )
                ),
                0,
            ),
            func.coalesce(func.max(BotRun.memory_max_bytes), 0),
        ).where(BotRun.bot_id == bot_id)
    ).one()
    return BotUsage(Decimal(cpu), max(0, int(seconds)), int(memory))
