"""Bots in the browser: the list, the form that creates or edits one, the detail page (state
and crash cause, trades, profit chart, usage, live log) and its start, stop, restart and
delete buttons.

Every route calls the bots service as the API does, for the signed-in client's tenant: another
tenant's bot is a 404. Profits are shown in the stake currency and in euros, at the rate the
worker last read at the exchange (fta.bots.eur_rates), with the rate's time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from fta.access.quotas import quotas
from fta.access.service import PaymentRequired
from fta.accounts.deps import PagePrincipalDep, PageTenantDep, page_principal, page_tenant
from fta.accounts.models import BillingStatus, User
from fta.accounts.service import Principal, get_tenant
from fta.accounts.verification import EmailNotVerified
from fta.bots import api as bots_api
from fta.bots import eur_rates
from fta.bots import service as bots
from fta.bots.eur import EUR, stake_currency, to_eur
from fta.bots.eur_rates import EurRate
from fta.bots.models import ActualState, Bot, BotTrade, DesiredState
from fta.db import session_scope, utcnow
from fta.errors import Conflict, DomainError, Invalid, NotFound, QuotaExceeded, Unavailable
from fta.freqtrade.options import MAX_PAIRS_PER_BOT, TIMEFRAMES, parse_bot_config
from fta.jobs.market_pairs import usable_pairs
from fta.markets import DataSource
from fta.settings import get_settings
from fta.strategies.models import Strategy
from fta.strategies.service import list_strategies
from fta.web import i18n, pages
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/app/bots")

EXCHANGE = "binance"
# What the detail page shows without its script: the latest output, cut to a readable size.
LOG_CHUNKS_SHOWN = 60
LOG_CHARS_SHOWN = 20_000
TRADES_SHOWN = 200
CHART_TRADES = 1000
# Currencies whose amounts are written to the cent; others (BTC, ETH...) to 8 places.
CENT_CURRENCIES = frozenset(
    {"EUR", "USD", "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "TRY", "BRL", "GBP", "PLN"}
)
_NAME = re.compile(bots_api.NAME_PATTERN)
_SPACES = re.compile(r"[\s\u00a0\u202f']")

Gettext = Callable[[str], str]


# --- reading --------------------------------------------------------------------------------


def _bot_id(raw: str) -> uuid.UUID:
    """A bot's id from the address; anything else is a page that does not exist."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("no such bot") from None


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@dataclass(frozen=True)
class Profit:
    """An amount of a bot's stake currency, and what it is worth in euros at `rate`."""

    amount: Decimal | None
    currency: str
    eur: Decimal | None
    rate: EurRate | None


def _profit(amount: Decimal | None, currency: str, rates: Mapping[str, EurRate]) -> Profit:
    rate = rates.get(currency)
    eur = None
    if amount is not None:
        eur = to_eur(amount, currency, rate.eur_per_unit if rate is not None else None)
    return Profit(amount, currency, eur, rate if currency != EUR else None)


@dataclass(frozen=True)
class BotRow:
    bot: Bot
    pinned: bots.PinnedVersion | None
    currency: str
    uptime_seconds: int | None
    open_trades: int | None
    closed_trades: int | None
    closed_profit: Profit
    balance: Profit


def _row(
    bot: Bot,
    pinned: Mapping[uuid.UUID, bots.PinnedVersion],
    rates: Mapping[str, EurRate],
    now: datetime,
) -> BotRow:
    snapshot = bot.status or {}
    currency = stake_currency(bot.config) or "USDT"
    uptime = None
    if bot.actual_state == ActualState.RUNNING and bot.started_at is not None:
        uptime = max(0, int((now - bot.started_at).total_seconds()))
    return BotRow(
        bot=bot,
        pinned=pinned.get(bot.strategy_version_id),
        currency=currency,
        uptime_seconds=uptime,
        open_trades=snapshot.get("open_trades"),
        closed_trades=snapshot.get("closed_trades"),
        closed_profit=_profit(_decimal(snapshot.get("closed_profit")), currency, rates),
        balance=_profit(_decimal(snapshot.get("balance")), currency, rates),
    )


def _rates_used(rows: Sequence[Profit]) -> list[EurRate]:
    """The rates behind the euro amounts of a page, once each, for its footnote."""
    used: dict[str, EurRate] = {}
    for profit in rows:
        if profit.rate is not None and profit.amount is not None:
            used[profit.rate.currency] = profit.rate
    return sorted(used.values(), key=lambda rate: rate.currency)


def state_names(_: Gettext) -> dict[str, str]:
    return {
        ActualState.STOPPED: _("Stopped"),
        ActualState.STARTING: _("Starting"),
        ActualState.RUNNING: _("Trading"),
        ActualState.STOPPING: _("Stopping"),
        ActualState.CRASHED: _("Crashed"),
    }


def _wanted(_: Gettext) -> dict[str, str]:
    return {DesiredState.RUNNING: _("should run"), DesiredState.STOPPED: _("should be stopped")}


def _duration(seconds: int | None, _: Gettext) -> str:
    if seconds is None:
        return "—"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return _("%(d)dd %(h)dh") % {"d": days, "h": hours}
    if hours:
        return _("%(h)dh %(m)02dm") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)dm") % {"m": minutes}
    return _("%(s)ds") % {"s": secs}


@dataclass(frozen=True)
class Amounts:
    """Amounts of crypto-currencies as the reader's locale writes them."""

    fmt: i18n.Formats

    def stake(self, amount: Decimal | None, currency: str) -> str:
        if amount is None:
            return "—"
        digits = 2 if currency in CENT_CURRENCIES else 8
        return f"{self.fmt.number(amount, digits)}\u00a0{currency}"

    def price(self, value: Decimal | None) -> str:
        """A market price, with the digits its size needs."""
        if value is None:
            return "—"
        size = abs(value)
        digits = 2 if size >= 100 else 4 if size >= 1 else 6 if size >= Decimal("0.01") else 8
        return self.fmt.number(value, digits)

    def quantity(self, value: Decimal | None) -> str:
        """An amount of a coin with the digits it has (at most 8)."""
        if value is None:
            return "—"
        exponent = value.normalize().as_tuple().exponent
        digits = min(8, max(0, -exponent)) if isinstance(exponent, int) else 8
        return self.fmt.number(value, digits)

    def eur_rate(self, eur_per_unit: Decimal) -> str:
        """A rate in euros, to six significant digits."""
        places = 5 - eur_per_unit.adjusted()
        shown = eur_per_unit.quantize(Decimal(1).scaleb(-places)) if places > 0 else eur_per_unit
        return self.fmt.rate(shown.normalize() if places > 2 else shown.quantize(Decimal("0.01")))


def _formats(request: Request) -> i18n.Formats:
    return i18n.Formats(pages.locale_of(request))


def _ngettext_for(request: Request) -> Callable[[str, str, int], str]:
    """The page language's ngettext, for texts a view builds."""
    translations = i18n.catalogs(pages.site_of(request).locales)[pages.locale_of(request)]
    return translations.ngettext


def _common(request: Request) -> dict[str, Any]:
    _ = pages.gettext_for(request)
    return {
        "state_names": state_names(_),
        "wanted_names": _wanted(_),
        "duration": lambda seconds: _duration(seconds, _),
        "amounts": Amounts(_formats(request)),
        "synthetic": get_settings().market_data_mode != "proxy",
    }


# --- the list --------------------------------------------------------------------------------


def listing(request: Request, session: Session, tenant_id: str) -> dict[str, Any]:
    """The tenant's bots as the list shows them, and what its macros need (the dashboard
    shows them too)."""
    listed = bots.list_bots(session, tenant_id)
    pinned = bots.pinned_versions(session, tenant_id, listed)
    rates = eur_rates.rates(session)
    now = utcnow()
    rows = [_row(bot, pinned, rates, now) for bot in listed]
    return {
        **_common(request),
        "rows": rows,
        "rates_used": _rates_used([row.closed_profit for row in rows]),
    }


@router.get("")
def bot_list(request: Request, session: SessionDep, tenant_id: PageTenantDep) -> Response:
    return pages.render(request, "bots/list.html", listing(request, session, tenant_id))


# --- the form --------------------------------------------------------------------------------


@dataclass
class BotForm:
    """What the client typed, kept as typed, and what is wrong with it, by field."""

    name: str = ""
    strategy_id: str = ""
    pin_latest: bool = False
    stake_currency: str = "USDT"
    pairs: list[str] = field(default_factory=list)
    timeframe: str = "5m"
    stake_amount: str = "100"
    max_open_trades: str = "3"
    dry_run_wallet: str = "1000"
    errors: dict[str, str] = field(default_factory=dict)
    problem: str | None = None  # not about one field


def _form_of(bot: Bot, fmt: i18n.Formats) -> BotForm:
    config = bot.config
    return BotForm(
        name=bot.name,
        stake_currency=stake_currency(config) or "USDT",
        pairs=list(config.get("pairs") or []),
        timeframe=str(config.get("timeframe", "5m")),
        stake_amount=_typed(config.get("stake_amount"), fmt),
        max_open_trades=str(config.get("max_open_trades", "")),
        dry_run_wallet=_typed(config.get("dry_run_wallet"), fmt),
    )


def _typed(value: object, fmt: i18n.Formats) -> str:
    """A stored amount as the reader would type it (`12,5` in French)."""
    number = _decimal(value)
    if number is None:
        return ""
    text = format(number.normalize(), "f")
    return text.replace(".", ",") if fmt.locale == "fr" else text


def _number(raw: str) -> Decimal | None:
    """A number as people type it: `1 000,50`, `1000.5`."""
    cleaned = _SPACES.sub("", raw).replace(",", ".")
    if not cleaned or len(cleaned) > 40:
        return None
    return _decimal(cleaned)


def _pair_choices(session: Session) -> tuple[dict[str, list[str]], str | None]:
    """The pairs a bot may use now, grouped by quote currency (the stake currency), and why
    there are none when there are none."""
    usable = usable_pairs(session, EXCHANGE)
    groups: dict[str, list[str]] = {}
    for pair in sorted(usable):
        groups.setdefault(pair.split("/")[1], []).append(pair)
    # The most used quote currencies first.
    ordered = dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))
    return ordered, None if ordered else get_settings().market_data_mode


def _check(
    form: BotForm, _: Gettext, strategies: Sequence[Strategy], usable: set[str]
) -> dict[str, Any] | None:
    """The config to send, or None with `form.errors` filled in."""
    errors = form.errors
    if not _NAME.fullmatch(form.name):
        errors["name"] = _(
            "1 to 64 characters: letters, digits, spaces and _ . - (starting with a letter or "
            "a digit)."
        )
    if form.strategy_id not in {str(strategy.id) for strategy in strategies}:
        errors["strategy_id"] = _("Choose one of your strategies.")
    unknown = [pair for pair in form.pairs if pair not in usable]
    if not form.pairs:
        errors["pairs"] = _("Choose at least one pair.")
    elif len(form.pairs) > MAX_PAIRS_PER_BOT:
        errors["pairs"] = _("Choose at most %(n)d pairs.") % {"n": MAX_PAIRS_PER_BOT}
    elif unknown:
        errors["pairs"] = _("Not available now: %(pairs)s.") % {"pairs": ", ".join(unknown[:5])}
    elif len({pair.partition("/")[2] for pair in form.pairs}) > 1:
        errors["pairs"] = _(
            "Every pair must have the same quote currency: it is the bot's stake currency."
        )
    numbers: dict[str, Decimal | None] = {}
    for name in ("stake_amount", "dry_run_wallet", "max_open_trades"):
        numbers[name] = _number(getattr(form, name))
        if numbers[name] is None:
            errors[name] = _("Enter a number, for example 100 or 12,5.")
    max_open = numbers["max_open_trades"]
    if max_open is not None and max_open != max_open.to_integral_value():
        errors["max_open_trades"] = _("Enter a whole number from 1 to 50.")
    if errors:
        return None
    config = {
        "exchange": EXCHANGE,
        "pairs": form.pairs,
        "timeframe": form.timeframe,
        "stake_amount": str(numbers["stake_amount"]),
        "max_open_trades": int(max_open or 0),
        "dry_run_wallet": str(numbers["dry_run_wallet"]),
    }
    try:
        parse_bot_config(config)
    except ValidationError as invalid:
        for error in invalid.errors():
            where, message = _config_error(error, _)
            errors.setdefault(where, message)
        return None
    return config


def _config_error(error: Mapping[str, Any], _: Gettext) -> tuple[str, str]:
    """A field and a message in the reader's language for one error of the bot config's
    validation (fta.freqtrade.options.BotConfig)."""
    where = str(error["loc"][0]) if error["loc"] else ""
    kind = str(error["type"])
    text = str(error["msg"])
    if not where:
        if "quote currency" in text:
            return "pairs", _(
                "Every pair must have the same quote currency: it is the bot's stake currency."
            )
        if "stake_amount" in text:
            return "stake_amount", _("The stake per trade cannot exceed the starting wallet.")
        return "", _("This configuration is not accepted.")
    if where == "pairs":
        if kind == "too_short":
            return where, _("Choose at least one pair.")
        if kind == "too_long":
            return where, _("Choose at most %(n)d pairs.") % {"n": MAX_PAIRS_PER_BOT}
        return where, _("Choose the pairs from the list.")
    if where == "timeframe":
        return where, _("Choose a timeframe from the list.")
    if where == "max_open_trades":
        return where, _("Enter a whole number from 1 to 50.")
    if where in ("stake_amount", "dry_run_wallet"):
        if kind == "decimal_max_places":
            return where, _("At most 8 decimal places.")
        if kind == "less_than_equal":
            return where, _("At most 1 000 000 000.")
        return where, _("Enter an amount above zero.")
    return "", _("This configuration is not accepted.")


def _refusal(exc: DomainError, form: BotForm, _: Gettext) -> None:
    """A refusal of the service, written into the form."""
    if isinstance(exc, Unavailable):
        form.problem = _(
            "The exchange's list of markets is not available yet: try again in a minute."
        )
    elif isinstance(exc, Conflict):
        form.errors["name"] = _("You already have a bot with this name: choose another one.")
    elif isinstance(exc, NotFound):
        form.errors["strategy_id"] = _("Choose one of your strategies.")
    elif isinstance(exc, Invalid) and "pairs" in exc.detail:
        form.errors["pairs"] = _("Some of these pairs cannot be used now: choose others.")
    else:
        raise exc


def _form_page(
    request: Request,
    session: SessionDep,
    tenant_id: str,
    form: BotForm,
    bot: Bot | None,
    status_code: int = 200,
) -> Response:
    groups, no_pairs_mode = _pair_choices(session)
    strategies = list_strategies(session, tenant_id)
    pinned = bots.pinned_versions(session, tenant_id, [bot]) if bot is not None else {}
    if form.stake_currency not in groups and groups:
        form.stake_currency = next(iter(groups))
    context = {
        **_common(request),
        "form": form,
        "bot": bot,
        "pinned": pinned.get(bot.strategy_version_id) if bot is not None else None,
        "strategies": strategies,
        "groups": groups,
        "no_pairs_mode": no_pairs_mode,
        "timeframes": TIMEFRAMES,
        "max_pairs": MAX_PAIRS_PER_BOT,
    }
    return pages.render(request, "bots/form.html", context, status_code=status_code)


PairsField = Annotated[list[str], Form(max_length=200)]
Text = Annotated[str, Form(max_length=200)]


def typed_form(
    name: Text = "",
    strategy_id: Text = "",
    pin_latest: Annotated[bool, Form()] = False,
    stake_currency: Annotated[str, Form(max_length=20)] = "",
    pairs: PairsField = [],  # noqa: B006 (FastAPI copies defaults)
    timeframe: Text = "",
    stake_amount: Text = "",
    max_open_trades: Text = "",
    dry_run_wallet: Text = "",
) -> BotForm:
    """The bot form as the client typed it (the new and the edit form alike)."""
    return BotForm(
        name=name.strip(),
        strategy_id=strategy_id,
        pin_latest=pin_latest,
        stake_currency=stake_currency,
        pairs=pairs,
        timeframe=timeframe,
        stake_amount=stake_amount,
        max_open_trades=max_open_trades,
        dry_run_wallet=dry_run_wallet,
    )


TypedFormDep = Annotated[BotForm, Depends(typed_form)]


def _checked_config(
    session: Session, tenant_id: str, form: BotForm, _: Gettext
) -> dict[str, Any] | None:
    """The config the form asks for, or None with the form's mistakes noted on it."""
    strategies = list_strategies(session, tenant_id)
    usable = {pair for group in _pair_choices(session)[0].values() for pair in group}
    return _check(form, _, strategies, usable)


@router.get("/new")
def new_bot_form(request: Request, session: SessionDep, tenant_id: PageTenantDep) -> Response:
    form = BotForm()
    strategies = list_strategies(session, tenant_id)
    if strategies:
        form.strategy_id = str(strategies[-1].id)
    return _form_page(request, session, tenant_id, form, None)


@router.post("/new")
def create_bot(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    form: TypedFormDep,
) -> Response:
    _ = pages.gettext_for(request)
    config = _checked_config(session, tenant_id, form, _)
    if config is not None:
        try:
            with session.begin_nested():
                bot = bots.create_bot(
                    session,
                    principal,
                    tenant_id,
                    name=form.name,
                    strategy_id=uuid.UUID(form.strategy_id),
                    config=config,
                    ip=ip,
                )
        except DomainError as refused:
            _refusal(refused, form, _)
        else:
            return RedirectResponse(f"/app/bots/{bot.id}", status_code=303)
    return _form_page(request, session, tenant_id, form, None, status_code=400)


@router.get("/{bot_id}/edit")
def edit_bot_form(
    request: Request, session: SessionDep, tenant_id: PageTenantDep, bot_id: str
) -> Response:
    bot = bots.get_bot(session, tenant_id, _bot_id(bot_id))
    form = _form_of(bot, _formats(request))
    pinned = bots.pinned_versions(session, tenant_id, [bot]).get(bot.strategy_version_id)
    if pinned is not None and not pinned.strategy_deleted:
        form.strategy_id = str(pinned.strategy_id)
    return _form_page(request, session, tenant_id, form, bot)


@router.post("/{bot_id}/edit")
def edit_bot(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    bot_id: str,
    form: TypedFormDep,
) -> Response:
    _ = pages.gettext_for(request)
    bot = bots.get_bot(session, tenant_id, _bot_id(bot_id))
    config = _checked_config(session, tenant_id, form, _)
    if config is not None:
        pinned = bots.pinned_versions(session, tenant_id, [bot]).get(bot.strategy_version_id)
        same_strategy = pinned is not None and str(pinned.strategy_id) == form.strategy_id
        try:
            with session.begin_nested():
                bots.update_bot(
                    session,
                    principal,
                    tenant_id,
                    bot.id,
                    name=form.name,
                    # The strategy's current version is pinned again only when asked.
                    strategy_id=None
                    if same_strategy and not form.pin_latest
                    else uuid.UUID(form.strategy_id),
                    config=config,
                    ip=ip,
                )
        except DomainError as refused:
            _refusal(refused, form, _)
        else:
            return RedirectResponse(f"/app/bots/{bot.id}", status_code=303)
    return _form_page(request, session, tenant_id, form, bot, status_code=400)


# --- the detail page -------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeRow:
    trade: BotTrade
    profit: Profit


def _chart(
    closed: Sequence[BotTrade], total: Decimal | None, count: int | None
) -> list[tuple[int, str]]:
    """The cumulative closed profit, oldest first, as (ms, amount): where it stood when the
    first trade shown opened, then after each closed trade.

    When the bot closed more trades than are shown, the line starts at what the trades
    before them made, so that it ends at the bot's closed profit."""
    ordered = sorted(
        (
            (trade.close_date, trade.trade_id, trade.profit_abs, trade.open_date)
            for trade in closed
            if trade.close_date is not None and trade.profit_abs is not None
        ),
        key=lambda point: (point[0], point[1]),
    )
    if not ordered:
        return []
    running = Decimal(0)
    if total is not None and count is not None and count > len(ordered):
        running = total - sum((profit for _, _, profit, _ in ordered), Decimal(0))
    first_open = min(opened for _, _, _, opened in ordered)
    points = [(_ms(first_open), _plain(running))]
    for closed_at, _, profit, _ in ordered:
        running += profit
        points.append((_ms(closed_at), _plain(running)))
    return points


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _plain(amount: Decimal) -> str:
    return format(amount.normalize(), "f")


def _detail(
    request: Request,
    session: Session,
    tenant_id: str,
    bot: Bot,
    *,
    error: str | None = None,
    pay_link: bool = False,
    status_code: int = 200,
) -> Response:
    rates = eur_rates.rates(session)
    pinned = bots.pinned_versions(session, tenant_id, [bot])
    row = _row(bot, pinned, rates, utcnow())
    open_trades = bots.bot_trades(session, tenant_id, bot.id, is_open=True, limit=TRADES_SHOWN)
    closed = bots.bot_trades(session, tenant_id, bot.id, is_open=False, limit=CHART_TRADES)
    chunks = bots.latest_logs(session, tenant_id, bot.id, limit=LOG_CHUNKS_SHOWN)
    log_text = "".join(chunk.text for chunk in chunks)[-LOG_CHARS_SHOWN:]
    usage = bots.bot_usage(session, bot.id)
    closed_rows = [
        TradeRow(trade, _profit(trade.profit_abs, row.currency, rates))
        for trade in closed[:TRADES_SHOWN]
    ]
    _ = pages.gettext_for(request)
    chart = {
        "currency": row.currency,
        "label": _("Cumulative closed profit (%(currency)s)") % {"currency": row.currency},
        "locale": pages.locale_of(request),
        "points": _chart(closed, row.closed_profit.amount, row.closed_trades),
    }
    context = {
        **_common(request),
        "row": row,
        "bot": bot,
        "config": bot.config,
        "open_trades": open_trades,
        "closed_trades": closed_rows,
        "closed_total": len(closed),
        "chart": chart,
        "log_text": log_text,
        "log_after": chunks[-1].seq if chunks else -1,
        "usage": usage,
        "cpu_hours": usage.cpu_seconds / 3600,
        "rates_used": _rates_used([row.closed_profit, row.balance]),
        "error": error,
        "pay_link": pay_link,
        "seen": _seen(bot),
        "busy": _busy(bot),
    }
    return pages.render(request, "bots/detail.html", context, status_code=status_code)


def _seen(bot: Bot) -> str:
    """What the page shows of the bot's state: the page reloads when it changes."""
    return f"{bot.actual_state}|{bot.desired_state}|{bot.restart_requested_at is not None}"


def _busy(bot: Bot) -> bool:
    """Whether the worker has yet to bring the bot where the client wants it."""
    if bot.restart_requested_at is not None:
        return True
    if bot.desired_state == DesiredState.RUNNING:
        return bot.actual_state != ActualState.RUNNING
    return bot.actual_state not in (ActualState.STOPPED, ActualState.CRASHED)


@router.get("/{bot_id}/state")
def bot_state(session: SessionDep, tenant_id: PageTenantDep, bot_id: str) -> Response:
    """The bot's state as its page shows it, for the page's script."""
    bot = bots.get_bot(session, tenant_id, _bot_id(bot_id))
    return JSONResponse(
        {"seen": _seen(bot), "busy": _busy(bot)}, headers={"Cache-Control": "no-store"}
    )


@router.get("/{bot_id}")
def bot_detail(
    request: Request, session: SessionDep, tenant_id: PageTenantDep, bot_id: str
) -> Response:
    bot = bots.get_bot(session, tenant_id, _bot_id(bot_id))
    return _detail(request, session, tenant_id, bot)


def _start_refusal(
    request: Request, session: Session, principal: Principal, tenant_id: str, exc: DomainError
) -> tuple[str, bool]:
    """Why the bot cannot start, in the reader's language, and whether paying would help."""
    _ = pages.gettext_for(request)
    ngettext = _ngettext_for(request)
    if isinstance(exc, EmailNotVerified):
        user = session.get(User, principal.user_id)
        return _(
            "Verify your e-mail address to run jobs and bots: open the link we sent to %(email)s."
        ) % {"email": user.email if user is not None else ""}, False
    if isinstance(exc, PaymentRequired):
        status = get_tenant(session, tenant_id).billing_status
        messages = {
            BillingStatus.TRIALING: _(
                "Your free trial is over or its allowance is used up: choose a plan to start "
                "bots again."
            ),
            BillingStatus.PAST_DUE: _("A payment is overdue: pay it to start bots again."),
            BillingStatus.CANCELLED: _(
                "Your subscription is cancelled: choose a plan to start bots again."
            ),
        }
        return messages.get(
            BillingStatus(status),
            _("Your account is suspended for lack of payment: pay to restore access."),
        ), True
    if isinstance(exc, QuotaExceeded):
        tenant = get_tenant(session, tenant_id)
        running = [
            bot.name
            for bot in bots.list_bots(session, tenant_id)
            if bot.desired_state == DesiredState.RUNNING
        ]
        limit = quotas(session, tenant, utcnow()).max_bots
        return ngettext(
            "Your plan runs %(n)d bot at once (running: %(names)s): stop it, or choose a "
            "bigger plan, to start this one.",
            "Your plan runs %(n)d bots at once (running: %(names)s): stop one, or choose a "
            "bigger plan, to start this one.",
            limit,
        ) % {"n": limit, "names": ", ".join(running) or "—"}, True
    if isinstance(exc, Conflict):
        if get_settings().market_data_source is DataSource.RECORDED:
            return _(
                "Bots cannot run while the platform serves recorded market data: recorded "
                "history has no live prices."
            ), False
        reason = get_tenant(session, tenant_id).suspension_reason
        if reason:
            return _(
                "Your account is suspended by fta (%(reason)s): bots cannot be started. "
                "Contact support."
            ) % {"reason": reason}, False
        return _("Your account is suspended: bots cannot be started."), True
    raise exc


def _act(
    request: Request,
    session: Session,
    principal: Principal,
    tenant_id: str,
    bot_id: str,
    ip: str | None,
    action: Callable[[Session, Principal, str, uuid.UUID, str | None], object],
) -> Response:
    ident = _bot_id(bot_id)
    try:
        with session.begin_nested():
            action(session, principal, tenant_id, ident, ip)
    except (EmailNotVerified, PaymentRequired, QuotaExceeded, Conflict) as refused:
        message, pay = _start_refusal(request, session, principal, tenant_id, refused)
        bot = bots.get_bot(session, tenant_id, ident)
        status = refused.status
        return _detail(
            request, session, tenant_id, bot, error=message, pay_link=pay, status_code=status
        )
    return RedirectResponse(f"/app/bots/{ident}", status_code=303)


@router.post("/{bot_id}/start")
def start_bot(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    bot_id: str,
) -> Response:
    return _act(request, session, principal, tenant_id, bot_id, ip, bots.start_bot)


@router.post("/{bot_id}/stop")
def stop_bot(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    bot_id: str,
) -> Response:
    return _act(request, session, principal, tenant_id, bot_id, ip, bots.stop_bot)


@router.post("/{bot_id}/restart")
def restart_bot(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    bot_id: str,
) -> Response:
    return _act(request, session, principal, tenant_id, bot_id, ip, bots.restart_bot)


@router.post("/{bot_id}/delete")
def delete_bot(
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    bot_id: str,
) -> Response:
    bots.delete_bot(session, principal, tenant_id, _bot_id(bot_id), ip)
    return RedirectResponse("/app/bots", status_code=303)


# --- the live log ----------------------------------------------------------------------------


def _stream_tenant(request: Request) -> str:
    """The signed-in client's tenant, without a database session held for the whole
    stream (a stream lasts minutes and must not keep a connection from the pool)."""
    with session_scope() as session:
        return page_tenant(page_principal(request, session))


def _owned(tenant_id: str, bot_id: uuid.UUID) -> None:
    with session_scope() as session:
        bots.get_bot(session, tenant_id, bot_id)


@router.get("/{bot_id}/logs/stream")
async def log_stream(
    request: Request,
    tenant_id: Annotated[str, Depends(_stream_tenant)],
    bot_id: str,
    after: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
) -> Response:
    """The bot's new output as server-sent events (`log`, then `end`), as the API's
    `follow=true` streams it, within the same per-account stream limits."""
    ident = _bot_id(bot_id)
    # Another tenant's bot answers 404 before any stream is opened.
    await run_in_threadpool(_owned, tenant_id, ident)
    return bots_api.follow_logs(request, tenant_id, ident, after)
