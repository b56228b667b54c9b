"""/api/v1/bots."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from fta.accounts.deps import PrincipalDep, TenantDep, current_principal, current_tenant
from fta.bots import service
from fta.bots.models import ActualState, Bot, BotTrade
from fta.db import session_scope, utcnow
from fta.errors import NotFound
from fta.web import streams
from fta.web.deps import ClientIpDep, SessionDep
from fta.web.streams import StreamLease, stream_registry

router = APIRouter(prefix="/bots", tags=["bots"])

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"
# A log stream is bounded: the client reconnects (EventSource does so by itself) to go on.
FOLLOW_MAX_SECONDS = 300.0
FOLLOW_POLL_SECONDS = 1.0
FOLLOW_KEEPALIVE_POLLS = 15
FOLLOW_PAGE = 500
_DIGITS = re.compile(r"[0-9]{1,9}")
_bearer = HTTPBearer(auto_error=False)


class BotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="unique among your bots")
    strategy_id: uuid.UUID = Field(description="the bot pins this strategy's current version")
    config: dict[str, Any] = Field(
        description="exchange, pairs, timeframe, stake_amount, max_open_trades, dry_run_wallet"
    )


class BotPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    strategy_id: uuid.UUID | None = Field(
        default=None, description="pins this strategy's current version (again, if unchanged)"
    )
    config: dict[str, Any] | None = Field(default=None, description="replaces the whole config")

    @model_validator(mode="after")
    def _something(self) -> BotPatch:
        if self.name is None and self.strategy_id is None and self.config is None:
            raise ValueError("send at least one of name, strategy_id, config")
        return self


class BotOut(BaseModel):
    id: uuid.UUID
    name: str
    strategy_version_id: uuid.UUID
    config: dict[str, Any]
    desired_state: str
    actual_state: str
    restart_pending: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    uptime_seconds: int | None
    restarts: int
    restart_backoff_until: datetime | None
    last_heartbeat_at: datetime | None
    last_error: str | None
    last_log_lines: str | None
    open_trades: int | None
    closed_trades: int | None
    closed_profit: Decimal | None = Field(description="in the stake currency")
    balance: Decimal | None = Field(description="simulated wallet, in the stake currency")
    freqtrade_state: str | None = Field(description="as freqtrade's last heartbeat said")
    whitelist: list[str] = Field(description="the pairs freqtrade trades, as it last logged")
    status_at: datetime | None
    cpu_seconds: Decimal = Field(description="CPU time of all the bot's runs so far")
    running_seconds: int = Field(description="time the bot's containers ran, all runs")


class LogChunk(BaseModel):
    seq: int
    text: str
    created_at: datetime


class LogPage(BaseModel):
    chunks: list[LogChunk]
    next_after: int = Field(description="pass as `after` to read what follows")


class TradeOut(BaseModel):
    trade_id: int
    pair: str
    is_open: bool
    open_date: datetime
    close_date: datetime | None
    amount: Decimal
    stake_amount: Decimal
    open_rate: Decimal
    close_rate: Decimal | None
    profit_abs: Decimal | None
    profit_ratio: Decimal | None


def _out(bot: Bot, session: Session) -> BotOut:
    uptime = None
    if bot.actual_state == ActualState.RUNNING and bot.started_at is not None:
        uptime = max(0, int((utcnow() - bot.started_at).total_seconds()))
    snapshot = bot.status or {}
    usage = service.bot_usage(session, bot.id)
    return BotOut(
        id=bot.id,
        name=bot.name,
        strategy_version_id=bot.strategy_version_id,
        config=bot.config,
        desired_state=bot.desired_state,
        actual_state=bot.actual_state,
        restart_pending=bot.restart_requested_at is not None,
        created_at=bot.created_at,
        updated_at=bot.updated_at,
        started_at=bot.started_at,
        uptime_seconds=uptime,
        restarts=bot.restarts,
        restart_backoff_until=bot.restart_backoff_until,
        last_heartbeat_at=bot.last_heartbeat_at,
        last_error=bot.last_error,
        last_log_lines=bot.last_log_lines,
        open_trades=snapshot.get("open_trades"),
        closed_trades=snapshot.get("closed_trades"),
        closed_profit=snapshot.get("closed_profit"),
        balance=snapshot.get("balance"),
        freqtrade_state=snapshot.get("freqtrade_state"),
        whitelist=snapshot.get("whitelist") or [],
        status_at=bot.status_at,
        cpu_seconds=usage.cpu_seconds,
        running_seconds=usage.running_seconds,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def create_bot(
    body: BotIn, principal: PrincipalDep, tenant: TenantDep, session: SessionDep, ip: ClientIpDep
) -> BotOut:
    bot = service.create_bot(
        session,
        principal,
        tenant,
        name=body.name,
        strategy_id=body.strategy_id,
        config=body.config,
        ip=ip,
    )
    return _out(bot, session)


@router.get("")
def list_bots(tenant: TenantDep, session: SessionDep) -> list[BotOut]:
    return [_out(bot, session) for bot in service.list_bots(session, tenant)]


@router.get("/{bot_id}")
def get_bot(bot_id: uuid.UUID, tenant: TenantDep, session: SessionDep) -> BotOut:
    return _out(service.get_bot(session, tenant, bot_id), session)


@router.patch("/{bot_id}")
def update_bot(
    bot_id: uuid.UUID,
    body: BotPatch,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> BotOut:
    """Takes effect at the bot's next start or restart."""
    bot = service.update_bot(
        session,
        principal,
        tenant,
        bot_id,
        name=body.name,
        strategy_id=body.strategy_id,
        config=body.config,
        ip=ip,
    )
    return _out(bot, session)


@router.post("/{bot_id}/start", status_code=status.HTTP_202_ACCEPTED)
def start_bot(
    bot_id: uuid.UUID,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> BotOut:
    """Counts against the plan's running bots; the worker starts the container."""
    return _out(service.start_bot(session, principal, tenant, bot_id, ip), session)


@router.post("/{bot_id}/stop", status_code=status.HTTP_202_ACCEPTED)
def stop_bot(
    bot_id: uuid.UUID,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> BotOut:
    return _out(service.stop_bot(session, principal, tenant, bot_id, ip), session)


@router.post("/{bot_id}/restart", status_code=status.HTTP_202_ACCEPTED)
def restart_bot(
    bot_id: uuid.UUID,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> BotOut:
    """Restarts a running bot with its current config, or starts a stopped one."""
    return _out(service.restart_bot(session, principal, tenant, bot_id, ip), session)


@router.delete("/{bot_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_bot(
    bot_id: uuid.UUID,
    principal: PrincipalDep,
    tenant: TenantDep,
    session: SessionDep,
    ip: ClientIpDep,
) -> Response:
    """Stops the bot and removes it from your account; its name becomes free."""
    service.delete_bot(session, principal, tenant, bot_id, ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{bot_id}/trades")
def get_trades(
    bot_id: uuid.UUID,
    tenant: TenantDep,
    session: SessionDep,
    is_open: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[TradeOut]:
    """The bot's trades as its container last reported them, newest first."""
    trades = service.bot_trades(session, tenant, bot_id, is_open=is_open, limit=limit)
    return [_trade(trade) for trade in trades]


def _trade(trade: BotTrade) -> TradeOut:
    return TradeOut(
        trade_id=trade.trade_id,
        pair=trade.pair,
        is_open=trade.is_open,
        open_date=trade.open_date,
        close_date=trade.close_date,
        amount=trade.amount,
        stake_amount=trade.stake_amount,
        open_rate=trade.open_rate,
        close_rate=trade.close_rate,
        profit_abs=trade.profit_abs,
        profit_ratio=trade.profit_ratio,
    )


# --- logs ----------------------------------------------------------------------------------


def _tenant_of_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """TenantDep without a session held for the whole request: a log stream lasts minutes
    and must not keep a database connection from the pool."""
    with session_scope() as session:
        return current_tenant(current_principal(session, credentials))


def _page(tenant: str, bot_id: uuid.UUID, after: int, limit: int) -> LogPage:
    with session_scope() as session:
        chunks = service.bot_logs(session, tenant, bot_id, after=after, limit=limit)
        return LogPage(
            chunks=[LogChunk(seq=c.seq, text=c.text, created_at=c.created_at) for c in chunks],
            next_after=chunks[-1].seq if chunks else after,
        )


def _poll(tenant: str, bot_id: uuid.UUID, after: int) -> tuple[list[tuple[int, str]], bool]:
    with session_scope() as session:
        poll = service.poll_logs(session, tenant, bot_id, after=after, limit=FOLLOW_PAGE)
        return [(chunk.seq, chunk.text) for chunk in poll.chunks], poll.at_rest


async def _follow(
    request: Request, tenant: str, bot_id: uuid.UUID, after: int, lease: StreamLease
) -> AsyncIterator[str]:
    """The stream, which gives its lease back however it ends."""
    try:
        async for event in _follow_events(request, tenant, bot_id, after):
            yield event
    finally:
        lease.release()


async def _follow_events(
    request: Request, tenant: str, bot_id: uuid.UUID, after: int
) -> AsyncIterator[str]:
    """Polls the database (in worker threads: the event loop never blocks on it) until the
    bot is at rest with nothing more to send, the time limit, or the client's departure."""
    deadline = anyio.current_time() + FOLLOW_MAX_SECONDS
    quiet_polls = 0
    while True:
        try:
            chunks, at_rest = await run_in_threadpool(_poll, tenant, bot_id, after)
        except NotFound:
            yield streams.event("end", "the bot was deleted")
            return
        for seq, text in chunks:
            yield streams.event("log", text, seq)
            after = seq
        if len(chunks) == FOLLOW_PAGE:
            continue
        if at_rest and not chunks:
            yield streams.event("end", "the bot is stopped")
            return
        if anyio.current_time() >= deadline:
            yield streams.event("end", "time limit reached: reconnect to continue")
            return
        if await request.is_disconnected():
            return
        quiet_polls = 0 if chunks else quiet_polls + 1
        if quiet_polls >= FOLLOW_KEEPALIVE_POLLS:
            quiet_polls = 0
            yield ": keep-alive\n\n"
        await anyio.sleep(FOLLOW_POLL_SECONDS)


@router.get(
    "/{bot_id}/logs",
    response_model=LogPage,
    responses={
        200: {
            "description": "A page of log chunks, or with `follow=true` a server-sent event "
            "stream: `log` events (id = seq) then one `end` event.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def get_logs(
    bot_id: uuid.UUID,
    request: Request,
    tenant: Annotated[str, Depends(_tenant_of_token)],
    after: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    follow: bool = False,
) -> Any:
    """The bot's redacted output, oldest first, after sequence number `after`.

    `follow=true` streams new chunks as they arrive (at most five minutes per connection;
    a `Last-Event-ID` header resumes where a previous stream stopped). An account follows a
    few streams at once (429 past them), the service a bounded number in all (503).
    """
    # Also the ownership check of a stream: another tenant's bot answers 404, not an empty one.
    page = await run_in_threadpool(_page, tenant, bot_id, after, limit)
    if not follow:
        return page
    return follow_logs(request, tenant, bot_id, after)


def follow_logs(request: Request, tenant: str, bot_id: uuid.UUID, after: int) -> StreamingResponse:
    """The event stream of the bot's chunks after `after` (or after the `Last-Event-ID` the
    client resumes from), within the account's and the service's stream limits
    (fta.web.streams): the API's `follow=true` and the portal's live log alike. The caller
    has checked that the bot is the tenant's."""
    resume = request.headers.get("last-event-id", "")
    if _DIGITS.fullmatch(resume):
        after = max(after, int(resume))
    lease = stream_registry().acquire(tenant)
    return StreamingResponse(
        _follow(request, tenant, bot_id, after, lease),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
        # Also when the body never starts (the client left at once): release is idempotent.
        background=BackgroundTask(lease.release),
    )
