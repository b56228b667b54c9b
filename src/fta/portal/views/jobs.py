"""The client's jobs in the browser: the list with its filters, a new backtest, hyperopt or data
download, a job's page with its live logs (server-sent events), results and downloads, and two
backtests compared side by side.

Every handler calls the services the API's job routes call, for the signed-in tenant: another
tenant's job answers 404 like an unknown one.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import anyio
from fastapi import Depends, Form, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse

from fta.access import service as access
from fta.access.service import PaymentRequired
from fta.accounts.deps import PagePrincipalDep, PageTenantDep, page_principal, page_tenant
from fta.accounts.models import BillingStatus
from fta.accounts.service import get_tenant
from fta.accounts.verification import EmailNotVerified
from fta.db import session_scope, utcnow
from fta.errors import Conflict, Invalid, NotFound, RetryLater, Unavailable
from fta.freqtrade.options import (
    EARLIEST_DATE,
    MAX_RANDOM_STATE,
    TIMEFRAMES,
    HyperoptLoss,
    HyperoptSpace,
    options_for_kind,
    parse_job_config,
)
from fta.jobs import result_files, retention, service
from fta.jobs.api import PARAMETER_FILE_KEYS
from fta.jobs.market_pairs import usable_pairs
from fta.jobs.models import Job, JobKind, JobStatus
from fta.jobs.service import QueueFull
from fta.markets import SUPPORTED_EXCHANGES, label
from fta.strategies import service as strategies
from fta.web import i18n, pages, streams
from fta.web.deps import ClientIpDep, SessionDep

router = pages.page_router("/app/jobs")

Gettext = Callable[[str], str]

KINDS = tuple(JobKind)
STATUSES = tuple(JobStatus)
# The list's status filter: one status, or every job not ended yet.
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "active": (JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING),
    **{status.value: (status.value,) for status in JobStatus},
}
SPACES: tuple[str, ...] = HyperoptSpace.__args__  # type: ignore[attr-defined]
LOSSES: tuple[str, ...] = HyperoptLoss.__args__  # type: ignore[attr-defined]
MAX_PAIRS = 50
MAX_ROI_STEPS = 20
TRADES_SHOWN = 500
DEFAULT_DAYS = 30
# A live log stream: like the API's, bounded in time (EventSource reconnects by itself,
# resuming after the last event it got) and polling the database from worker threads.
FOLLOW_MAX_SECONDS = 300.0
FOLLOW_POLL_SECONDS = 1.0
FOLLOW_KEEPALIVE_POLLS = 15
FOLLOW_PAGE = 500
FOLLOW_RETRY_MS = 2000
_DIGITS = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,8})?")
_INTEGER = re.compile(r"[0-9]{1,10}")
_ROI_LINE = re.compile(r"\s*([0-9]{1,6})\s*[:=]\s*(-?[0-9]{1,3}(?:[.,][0-9]{1,8})?)\s*")

Short = Annotated[str, Field(max_length=64)]


class JobForm(BaseModel):
    """The new-job form as typed: text, checked here field by field so that the form comes
    back with what was typed and a message in the visitor's language next to each mistake."""

    model_config = ConfigDict(extra="ignore")

    kind: Short = JobKind.BACKTEST.value
    strategy_id: Short = ""
    exchange: Short = SUPPORTED_EXCHANGES[0]
    pairs: Annotated[list[Short], Field(max_length=500)] = []
    timeframe: Short = "5m"
    start: Short = ""
    end: Short = ""
    stake_amount: Short = "100"
    stake_unlimited: Short = ""
    max_open_trades: Short = "3"
    dry_run_wallet: Short = "1000"
    stoploss: Short = ""
    fee: Short = ""
    trailing_stop: Short = ""
    trailing_stop_positive: Short = ""
    trailing_stop_positive_offset: Short = ""
    trailing_only_offset_is_reached: Short = ""
    minimal_roi: Annotated[str, Field(max_length=2000)] = ""
    epochs: Short = "100"
    spaces: Annotated[list[Short], Field(max_length=20)] = ["default"]
    hyperopt_loss: Short = "SharpeHyperOptLoss"
    random_state: Short = ""
    max_minutes: Short = ""


# --- what the pages show -------------------------------------------------------------------


def option_labels(_: Gettext) -> dict[str, str]:
    return {
        "exchange": _("Exchange"),
        "pairs": _("Pairs"),
        "timeframe": _("Timeframe"),
        "timerange": _("Period"),
        "stake_amount": _("Stake per trade"),
        "stake_currency": _("Stake currency"),
        "max_open_trades": _("Maximum open trades"),
        "dry_run_wallet": _("Starting balance"),
        "minimal_roi": _("Minimal ROI"),
        "stoploss": _("Stop-loss"),
        "trailing_stop": _("Trailing stop"),
        "trailing_stop_positive": _("Trailing stop once in profit"),
        "trailing_stop_positive_offset": _("Trailing offset"),
        "trailing_only_offset_is_reached": _("Trail only past the offset"),
        "fee": _("Fee"),
        "epochs": _("Epochs"),
        "spaces": _("Spaces"),
        "hyperopt_loss": _("Loss function"),
        "random_state": _("Random seed"),
    }


def kind_names(_: Gettext) -> dict[str, str]:
    return {
        JobKind.BACKTEST: _("Backtest"),
        JobKind.HYPEROPT: _("Hyperopt"),
        JobKind.DOWNLOAD_DATA: _("Data download"),
    }


def status_names(_: Gettext) -> dict[str, str]:
    return {
        JobStatus.QUEUED: _("Queued"),
        JobStatus.STARTING: _("Starting"),
        JobStatus.RUNNING: _("Running"),
        JobStatus.SUCCEEDED: _("Succeeded"),
        JobStatus.FAILED: _("Failed"),
        JobStatus.CANCELLED: _("Cancelled"),
        JobStatus.TIMED_OUT: _("Timed out"),
        JobStatus.OOM_KILLED: _("Out of memory"),
    }


def _render(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> Response:
    """A page of the area, with the names of kinds and statuses in the visitor's language."""
    _ = pages.gettext_for(request)
    names = {
        "kind_names": {str(kind): name for kind, name in kind_names(_).items()},
        "status_names": {str(status): name for status, name in status_names(_).items()},
        "duration": _duration,
    }
    return pages.render(request, template, {**names, **context}, status_code=status_code)


def _duration(seconds: float | None) -> str:
    """A duration as traders write it, the same in French and English: 42 s, 3 min 05 s,
    2 h 07 min."""
    if seconds is None:
        return "—"
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _run_seconds(job: Job) -> float | None:
    if job.started_at is None:
        return None
    end = job.finished_at or utcnow()
    return (end - job.started_at).total_seconds()


def _day_of(timerange: str, index: int) -> datetime | None:
    try:
        return datetime.strptime(timerange.split("-")[index], "%Y%m%d").replace(tzinfo=UTC)
    except (ValueError, IndexError):
        return None


def _period(timerange: str, fmt: i18n.Formats) -> str:
    start, end = _day_of(timerange, 0), _day_of(timerange, 1)
    return f"{fmt.date(start)} → {fmt.date(end)}" if start and end else timerange


def _config_rows(job: Job, _: Gettext, fmt: i18n.Formats) -> list[tuple[str, str]]:
    """The job's options as it ran them, the defaults it did not set included."""
    labels = option_labels(_)
    try:
        effective = parse_job_config(job.kind, job.config).model_dump(mode="json")
        shown = options_for_kind(job.kind)
    except (ValidationError, ValueError):
        effective, shown = dict(job.config), tuple(job.config)
    if job.kind != JobKind.DOWNLOAD_DATA and "stake_currency" not in shown:
        shown = (*shown, "stake_currency")
    rows = []
    for name in shown:
        if name not in effective or effective[name] is None:
            continue
        value = effective[name]
        if name == "timerange":
            text = _period(str(value), fmt)
        elif name == "pairs" or name == "spaces":
            text = ", ".join(str(item) for item in value)
        elif name == "minimal_roi" and isinstance(value, dict):
            text = ", ".join(f"{minutes} min : {ratio}" for minutes, ratio in value.items())
        elif isinstance(value, bool):
            text = _("yes") if value else _("no")
        elif name == "stake_amount" and value == "unlimited":
            text = _("unlimited")
        else:
            text = str(value)
        rows.append((labels.get(name, name), text))
    return rows


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    return None


def _equity_series(details: result_files.BacktestDetails | None) -> list[list[float | None]]:
    """[time in ms, equity, drawdown in %] for the chart."""
    if details is None:
        return []
    return [
        [point.time_ms, _float(point.equity), _float(point.drawdown_pct)]
        for point in result_files.thinned(details.equity)
    ]


def _labels_of(session: SessionDep, tenant_id: str, jobs: Sequence[Job]) -> dict[Any, Any]:
    return service.strategy_labels(session, tenant_id, [job.strategy_version_id for job in jobs])


def _chart_texts(_: Gettext, lang: str) -> dict[str, str]:
    return {
        "lang": lang,
        "equity": _("Equity"),
        "drawdown": _("Drawdown"),
    }


# --- the list ------------------------------------------------------------------------------


@router.get("")
def job_list(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    status: Annotated[str, Query(max_length=20)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    status = status if status in STATUS_FILTERS else ""
    kind = kind if kind in KINDS else ""
    jobs = service.list_jobs(
        session,
        tenant_id,
        statuses=STATUS_FILTERS[status] if status else None,
        kinds=(kind,) if kind else None,
    )
    context = {
        "jobs": jobs,
        "labels": _labels_of(session, tenant_id, jobs),
        "status": status,
        "kind": kind,
        "statuses": STATUSES,
        "kinds": KINDS,
        "run_seconds": {job.id: _run_seconds(job) for job in jobs},
    }
    return _render(request, "jobs/list.html", context)


# --- a new job -----------------------------------------------------------------------------


def _pairs_by_quote(pairs: frozenset[str]) -> dict[str, list[str]]:
    """The pairs a job may use, by quote currency, the most offered quote first."""
    groups: dict[str, list[str]] = {}
    for pair in sorted(pairs):
        groups.setdefault(pair.split("/")[1], []).append(pair)
    return dict(sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])))


def _form_page(
    request: Request,
    session: SessionDep,
    tenant_id: str,
    form: JobForm,
    *,
    errors: Mapping[str, str] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    tenant = get_tenant(session, tenant_id)
    choices = strategies.list_strategies(session, tenant_id)
    exchange = form.exchange if form.exchange in SUPPORTED_EXCHANGES else SUPPORTED_EXCHANGES[0]
    bounds = access.job_bounds(session, tenant, utcnow())
    context = {
        "form": form,
        "errors": errors or {},
        "problem": problem,
        "strategies": choices,
        "exchanges": SUPPORTED_EXCHANGES,
        "pairs_by_quote": _pairs_by_quote(usable_pairs(session, exchange)),
        "timeframes": TIMEFRAMES,
        "spaces": SPACES,
        "losses": LOSSES,
        "kinds": KINDS,
        "max_minutes": max(bounds.max_seconds // 60, 1),
        "trial": bounds.trial,
        "earliest": EARLIEST_DATE.isoformat(),
        "latest": (utcnow().date() + timedelta(days=1)).isoformat(),
        "labels": option_labels(pages.gettext_for(request)),
        "max_random_state": MAX_RANDOM_STATE,
    }
    return _render(request, "jobs/new.html", context, status_code=status_code)


def _form_of_job(job: Job) -> JobForm:
    """A form filled with a job's options, to run it again with changes."""
    config = job.config
    values: dict[str, Any] = {"kind": job.kind}
    for name in ("exchange", "timeframe", "hyperopt_loss"):
        if isinstance(config.get(name), str):
            values[name] = config[name]
    if isinstance(config.get("pairs"), list):
        values["pairs"] = [str(pair) for pair in config["pairs"]][:MAX_PAIRS]
    start, end = (
        _day_of(str(config.get("timerange", "")), 0),
        _day_of(str(config.get("timerange", "")), 1),
    )
    if start and end:
        values["start"], values["end"] = start.date().isoformat(), end.date().isoformat()
    if config.get("stake_amount") == "unlimited":
        values["stake_unlimited"] = "on"
    for name in (
        "stake_amount",
        "max_open_trades",
        "dry_run_wallet",
        "stoploss",
        "fee",
        "trailing_stop_positive",
        "trailing_stop_positive_offset",
        "epochs",
        "random_state",
    ):
        value = config.get(name)
        if isinstance(value, int | float | str) and value != "unlimited":
            values[name] = str(value)
    for name in ("trailing_stop", "trailing_only_offset_is_reached"):
        if config.get(name) is True:
            values[name] = "on"
    if isinstance(config.get("spaces"), list):
        values["spaces"] = [str(space) for space in config["spaces"]]
    if isinstance(config.get("minimal_roi"), dict):
        values["minimal_roi"] = "\n".join(
            f"{minutes}: {ratio}" for minutes, ratio in config["minimal_roi"].items()
        )
    return JobForm.model_validate(values)


@router.get("/new")
def new_job(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    strategy: Annotated[str, Query(max_length=64)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
    from_job: Annotated[uuid.UUID | None, Query(alias="from")] = None,
) -> Response:
    if from_job is not None:
        job = service.get_job(session, tenant_id, from_job)
        form = _form_of_job(job)
        labels = _labels_of(session, tenant_id, [job])
        if job.strategy_version_id in labels:
            form.strategy_id = str(labels[job.strategy_version_id].strategy_id)
    else:
        today = utcnow().date()
        form = JobForm(
            start=(today - timedelta(days=DEFAULT_DAYS)).isoformat(), end=today.isoformat()
        )
        # The strategy asked for, else the one uploaded last.
        choices = strategies.list_strategies(session, tenant_id)
        if strategy in {str(choice.id) for choice in choices}:
            form.strategy_id = strategy
        elif choices:
            form.strategy_id = str(choices[-1].id)
        if kind in KINDS:
            form.kind = kind
    if not form.pairs:
        offered = usable_pairs(session, form.exchange)
        form.pairs = ["BTC/USDT"] if "BTC/USDT" in offered else sorted(offered)[:1]
    return _form_page(request, session, tenant_id, form)


class _Checked:
    """The form's values turned into a job's config, with a message per field in error."""

    def __init__(self, _: Gettext) -> None:
        self._ = _
        self.errors: dict[str, str] = {}
        self.config: dict[str, Any] = {}

    def refuse(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def decimal(self, field: str, raw: str, message: str) -> Decimal | None:
        text = raw.strip().replace(",", ".").replace("\u202f", "").replace(" ", "")
        if not text:
            return None
        if not _DECIMAL.fullmatch(text):
            self.refuse(field, message)
            return None
        try:
            return Decimal(text)
        except InvalidOperation:
            self.refuse(field, message)
            return None

    def integer(self, field: str, raw: str, low: int, high: int, message: str) -> int | None:
        text = raw.strip().replace("\u202f", "").replace(" ", "")
        if not text:
            return None
        if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
            self.refuse(field, message)
            return None
        return int(text)

    def day(self, field: str, raw: str, missing: str) -> date | None:
        if not raw.strip():
            self.refuse(field, missing)
            return None
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            self.refuse(field, self._("Give a date as YYYY-MM-DD."))
            return None


def _check_market(checked: _Checked, form: JobForm, usable: frozenset[str]) -> None:
    _ = checked._
    if form.exchange not in SUPPORTED_EXCHANGES:
        checked.refuse("exchange", _("Choose an exchange."))
        return
    checked.config["exchange"] = form.exchange
    pairs = list(dict.fromkeys(form.pairs))
    if not pairs:
        checked.refuse("pairs", _("Choose at least one pair."))
    elif len(pairs) > MAX_PAIRS:
        checked.refuse("pairs", _("Choose at most %(n)d pairs.") % {"n": MAX_PAIRS})
    elif unknown := [pair for pair in pairs if pair not in usable]:
        checked.refuse(
            "pairs",
            _("Not available on this exchange now: %(pairs)s.") % {"pairs": ", ".join(unknown[:5])},
        )
    elif len({pair.split("/")[1] for pair in pairs}) > 1:
        checked.refuse(
            "pairs",
            _("Choose pairs quoted in one currency, the stake currency: all in USDT, for example."),
        )
    else:
        checked.config["pairs"] = pairs
    if form.timeframe in TIMEFRAMES:
        checked.config["timeframe"] = form.timeframe
    else:
        checked.refuse("timeframe", _("Choose a timeframe."))
    start = checked.day("start", form.start, _("Give the first day."))
    end = checked.day("end", form.end, _("Give the last day."))
    if start is None or end is None:
        return
    if start < EARLIEST_DATE:
        checked.refuse(
            "start",
            _("The period cannot start before %(date)s.") % {"date": EARLIEST_DATE.isoformat()},
        )
    elif start >= end:
        checked.refuse("end", _("The end must come after the start."))
    elif end > utcnow().date() + timedelta(days=1):
        checked.refuse("end", _("The period cannot end after tomorrow."))
    else:
        checked.config["timerange"] = f"{start:%Y%m%d}-{end:%Y%m%d}"


def _check_trading(checked: _Checked, form: JobForm) -> None:
    _ = checked._
    config = checked.config
    if pairs := config.get("pairs"):
        config["stake_currency"] = pairs[0].split("/")[1]
    amount_message = _("Give an amount above 0 (at most 8 decimals).")
    wallet = checked.decimal("dry_run_wallet", form.dry_run_wallet, amount_message)
    if wallet is not None and wallet <= 0:
        checked.refuse("dry_run_wallet", amount_message)
    elif wallet is not None:
        config["dry_run_wallet"] = wallet
    if form.stake_unlimited:
        config["stake_amount"] = "unlimited"
    else:
        stake_message = _("Give an amount above 0, or choose unlimited.")
        stake = checked.decimal("stake_amount", form.stake_amount, stake_message)
        if stake is None or stake <= 0:
            checked.refuse("stake_amount", stake_message)
        elif wallet is not None and stake > wallet:
            checked.refuse("stake_amount", _("The stake must not exceed the starting balance."))
        else:
            config["stake_amount"] = stake
    trades = checked.integer(
        "max_open_trades", form.max_open_trades, 1, 50, _("Give a whole number from 1 to 50.")
    )
    if trades is not None:
        config["max_open_trades"] = trades
    stoploss_message = _("Give a ratio from -1 to 0, for example -0.10 for a 10 % stop-loss.")
    stoploss = checked.decimal("stoploss", form.stoploss, stoploss_message)
    if stoploss is not None and not Decimal(-1) <= stoploss < 0:
        checked.refuse("stoploss", stoploss_message)
    elif stoploss is not None:
        config["stoploss"] = stoploss
    fee_message = _("Give a ratio from 0 to 0.1, for example 0.001 for 0.1 %.")
    fee = checked.decimal("fee", form.fee, fee_message)
    if fee is not None and not Decimal(0) <= fee <= Decimal("0.1"):
        checked.refuse("fee", fee_message)
    elif fee is not None:
        config["fee"] = fee
    _check_trailing(checked, form)
    _check_roi(checked, form)


def _check_trailing(checked: _Checked, form: JobForm) -> None:
    _ = checked._
    config = checked.config
    if form.trailing_stop:
        config["trailing_stop"] = True
    ratio_message = _("Give a ratio between 0 and 1, for example 0.02.")
    positive = checked.decimal("trailing_stop_positive", form.trailing_stop_positive, ratio_message)
    if positive is not None and not Decimal(0) < positive < 1:
        checked.refuse("trailing_stop_positive", ratio_message)
        positive = None
    elif positive is not None:
        config["trailing_stop_positive"] = positive
    offset = checked.decimal(
        "trailing_stop_positive_offset", form.trailing_stop_positive_offset, ratio_message
    )
    if offset is not None and not Decimal(0) <= offset < 1:
        checked.refuse("trailing_stop_positive_offset", ratio_message)
    elif offset is not None and positive is not None and offset and offset <= positive:
        checked.refuse(
            "trailing_stop_positive_offset",
            _("The offset must be greater than the trailing stop once in profit."),
        )
    elif offset is not None:
        config["trailing_stop_positive_offset"] = offset
    if form.trailing_only_offset_is_reached:
        if not offset:
            checked.refuse(
                "trailing_only_offset_is_reached",
                _("Give an offset above 0 to trail only past it."),
            )
        else:
            config["trailing_only_offset_is_reached"] = True


def _check_roi(checked: _Checked, form: JobForm) -> None:
    _ = checked._
    lines = [line for line in form.minimal_roi.splitlines() if line.strip()]
    if not lines:
        return
    roi: dict[str, Decimal] = {}
    for line in lines:
        found = _ROI_LINE.fullmatch(line)
        ratio = Decimal(found[2].replace(",", ".")) if found else None
        if found is None or ratio is None or not Decimal(-1) < ratio <= 100:
            checked.refuse(
                "minimal_roi",
                _('One step per line: minutes, a colon, then the ratio, for example "30: 0.02".'),
            )
            return
        roi[str(int(found[1]))] = ratio
    if len(roi) > MAX_ROI_STEPS:
        checked.refuse("minimal_roi", _("At most %(n)d steps.") % {"n": MAX_ROI_STEPS})
        return
    checked.config["minimal_roi"] = roi


def _check_hyperopt(checked: _Checked, form: JobForm) -> None:
    _ = checked._
    epochs = checked.integer(
        "epochs", form.epochs, 1, 1000, _("Give a whole number from 1 to 1000.")
    )
    if epochs is None and not form.epochs.strip():
        checked.refuse("epochs", _("Give a whole number from 1 to 1000."))
    elif epochs is not None:
        checked.config["epochs"] = epochs
    spaces = [space for space in dict.fromkeys(form.spaces) if space in SPACES]
    if not spaces or len(spaces) != len(set(form.spaces)):
        checked.refuse("spaces", _("Choose at least one space."))
    else:
        checked.config["spaces"] = spaces
    if form.hyperopt_loss in LOSSES:
        checked.config["hyperopt_loss"] = form.hyperopt_loss
    else:
        checked.refuse("hyperopt_loss", _("Choose a loss function."))
    seed = checked.integer(
        "random_state",
        form.random_state,
        1,
        MAX_RANDOM_STATE,
        _("Give a whole number from 1 to %(max)d, or leave it empty.") % {"max": MAX_RANDOM_STATE},
    )
    if seed is not None:
        checked.config["random_state"] = seed


def _payment_problem(_: Gettext, billing_status: str) -> str:
    """Why the account may not start a job, in words, from its billing state (the service's
    own message is for the API's clients)."""
    if billing_status == BillingStatus.TRIALING:
        return _(
            "Your free trial is over or its allowance is used up: choose a plan to run jobs "
            "again. Your strategies and results are kept."
        )
    if billing_status == BillingStatus.PAST_DUE:
        return _("A payment is overdue: settle it in Billing to run jobs again.")
    if billing_status == BillingStatus.CANCELLED:
        return _("Your subscription is cancelled: choose a plan to run jobs again.")
    if billing_status == BillingStatus.ACTIVE:
        return _(
            "Your monthly spending cap is reached: new jobs are refused until next month, "
            "unless you raise the cap in Billing."
        )
    return _("Your account is suspended for lack of payment: see Billing to restore it.")


@router.post("/new")
def submit_job(
    request: Request,
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    form: Annotated[JobForm, Form()],
) -> Response:
    _ = pages.gettext_for(request)
    checked = _Checked(_)
    try:
        kind: JobKind | None = JobKind(form.kind)
    except ValueError:
        kind = None
        checked.refuse("kind", _("Choose what to run."))
    strategy_id = None
    if kind is not JobKind.DOWNLOAD_DATA:
        try:
            strategy_id = uuid.UUID(form.strategy_id)
        except ValueError:
            checked.refuse("strategy_id", _("Choose a strategy."))
    _check_market(checked, form, usable_pairs(session, form.exchange))
    if kind is not JobKind.DOWNLOAD_DATA:
        _check_trading(checked, form)
    if kind is JobKind.HYPEROPT:
        _check_hyperopt(checked, form)
    tenant = get_tenant(session, tenant_id)
    limit_minutes = max(access.job_bounds(session, tenant, utcnow()).max_seconds // 60, 1)
    minutes = checked.integer(
        "max_minutes",
        form.max_minutes,
        1,
        limit_minutes,
        _("Give a number of minutes from 1 to %(n)d, or leave it empty.") % {"n": limit_minutes},
    )
    if kind is not None and not checked.errors:
        try:
            parse_job_config(kind.value, checked.config)
        except ValidationError as refused:
            for error in refused.errors():
                field = str(error["loc"][0]) if error["loc"] else "form"
                checked.refuse(field, _("This value is not accepted."))
    if checked.errors or kind is None:
        return _form_page(
            request,
            session,
            tenant_id,
            form,
            errors=checked.errors,
            problem=_("Check the highlighted fields."),
            status_code=400,
        )
    problem: str | None = None
    status_code = 400
    errors: dict[str, str] = {}
    try:
        job = service.submit_job(
            session,
            principal,
            tenant_id,
            kind=kind,
            strategy_id=strategy_id,
            config=checked.config,
            max_seconds=None if minutes is None else minutes * 60,
            ip=ip,
        )
    except EmailNotVerified:
        problem, status_code = (
            _("Verify your e-mail address first: open the link we sent you."),
            403,
        )
    except PaymentRequired:
        problem, status_code = _payment_problem(_, tenant.billing_status), 402
    except QueueFull:
        problem, status_code = (
            _(
                "Too many of your jobs are already waiting for a slot: submit this one when "
                "one of them has started, or cancel one."
            ),
            429,
        )
    except Unavailable:
        problem, status_code = (
            _("The exchange's market list is not available yet: try again in a minute."),
            503,
        )
    except RetryLater:
        problem, status_code = _("The service is busy: try again in a minute."), 429
    except NotFound:
        errors = {"strategy_id": _("This strategy no longer exists: choose another one.")}
        problem = _("Check the highlighted fields.")
    except Conflict:
        status_code = 409
        if tenant.suspension_reason:
            problem = _(
                "Your account is suspended by fta (%(reason)s): no job can start. Contact support."
            ) % {"reason": tenant.suspension_reason}
        else:
            problem = _("Your account is suspended: no job can start. See Billing to restore it.")
    except Invalid as refused:
        problem, status_code = (
            _("The platform refused this job: %(detail)s") % {"detail": refused.detail},
            422,
        )
    else:
        return RedirectResponse(f"/app/jobs/{job.id}", status_code=303)
    session.rollback()
    return _form_page(
        request,
        session,
        tenant_id,
        form,
        errors=errors,
        problem=problem,
        status_code=status_code,
    )


# --- comparing two backtests ---------------------------------------------------------------


def _backtest(session: SessionDep, tenant_id: str, job_id: uuid.UUID) -> tuple[Job, dict[str, Any]]:
    """A succeeded backtest of the tenant's, with its summary (404 for anything else)."""
    job = service.get_job(session, tenant_id, job_id)
    if job.kind != JobKind.BACKTEST:
        raise NotFound(f"job {job_id} is not a backtest")
    return job, service.job_result(session, tenant_id, job_id)


def _metric_rows(
    _: Gettext,
    summaries: Sequence[Mapping[str, Any]],
    details: Sequence[result_files.BacktestDetails | None],
) -> list[dict[str, Any]]:
    """The metrics compared: name, how to write them, whether more is better, each job's
    value (from its summary, or from freqtrade's ratios in its result file), the difference."""
    specs: list[tuple[str, str, str, bool | None]] = [
        ("profit_total_abs", _("Total profit"), "money", True),
        ("profit_total_pct", _("Total profit (%)"), "pct", True),
        ("trades", _("Trades"), "int", None),
        ("win_rate", _("Win rate"), "ratio", True),
        ("max_drawdown_pct", _("Maximum drawdown (%)"), "pct", False),
        ("max_drawdown_abs", _("Maximum drawdown"), "money", False),
        ("final_balance", _("Final balance"), "money", True),
        ("sharpe", _("Sharpe ratio"), "number", True),
        ("sortino", _("Sortino ratio"), "number", True),
        ("calmar", _("Calmar ratio"), "number", True),
        ("profit_factor", _("Profit factor"), "number", True),
        ("expectancy", _("Expectancy"), "money", True),
    ]
    rows = []
    for key, name, style, more_is_better in specs:
        values = [
            _float(summary[key] if key in summary else getattr(detail and detail.ratios, key, None))
            for summary, detail in zip(summaries, details, strict=True)
        ]
        difference = None
        if len(values) == 2 and values[0] is not None and values[1] is not None:
            difference = values[1] - values[0]
        rows.append(
            {
                "key": key,
                "name": name,
                "style": style,
                "values": values,
                "difference": difference,
                "better": None
                if difference is None or more_is_better is None or difference == 0
                else (difference > 0) == more_is_better,
            }
        )
    return rows


@router.get("/compare")
def compare(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    a: Annotated[uuid.UUID | None, Query()] = None,
    b: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:
    candidates = service.list_jobs(
        session, tenant_id, statuses=(JobStatus.SUCCEEDED,), kinds=(JobKind.BACKTEST,)
    )
    labels = _labels_of(session, tenant_id, candidates)
    context: dict[str, Any] = {
        "candidates": candidates,
        "labels": labels,
        "a": a,
        "b": b,
        "pair": None,
    }
    if a is not None and b is not None:
        _ = pages.gettext_for(request)
        backtest = kind_names(_)[JobKind.BACKTEST]
        jobs, summaries, details = [], [], []
        for job_id in (a, b):
            job, summary = _backtest(session, tenant_id, job_id)
            jobs.append(job)
            summaries.append(summary)
            details.append(result_files.backtest_details(session, job, summary))
        labels = {**labels, **_labels_of(session, tenant_id, jobs)}
        fmt = i18n.Formats(pages.locale_of(request))
        context.update(
            labels=labels,
            pair=jobs,
            summaries=summaries,
            periods=[_period(str(summary.get("timerange", "")), fmt) for summary in summaries],
            rows=_metric_rows(_, summaries, details),
            config_rows=[_config_rows(job, _, fmt) for job in jobs],
            chart={
                "texts": _chart_texts(_, pages.locale_of(request)),
                "currency": str(summaries[0].get("stake_currency", "")),
                "series": [
                    {"label": f"{backtest} {letter}", "points": _equity_series(detail)}
                    for letter, detail in zip("AB", details, strict=True)
                ],
            },
        )
    return _render(request, "jobs/compare.html", context)


# --- one job -------------------------------------------------------------------------------


@router.get("/{job_id:uuid}")
def job_page(
    request: Request,
    session: SessionDep,
    tenant_id: PageTenantDep,
    job_id: uuid.UUID,
    epochs: Annotated[str, Query(max_length=10)] = "loss",
) -> Response:
    _ = pages.gettext_for(request)
    locale = pages.locale_of(request)
    fmt = i18n.Formats(locale)
    job = service.get_job(session, tenant_id, job_id)
    status = JobStatus(job.status)
    chunks = (
        []
        if job.output_pruned_at
        else service.log_chunks_after(session, tenant_id, job.id, after=-1)
    )
    summary = None
    if status is JobStatus.SUCCEEDED:
        try:
            summary = service.job_result(session, tenant_id, job.id)
        except NotFound:
            summary = None
    details = None
    epoch_rows = None
    chart = None
    others: list[Job] = []
    if summary is not None and job.kind == JobKind.BACKTEST:
        details = result_files.backtest_details(session, job, summary)
        chart = {
            "texts": _chart_texts(_, locale),
            "currency": str(summary.get("stake_currency", "")),
            "series": [{"label": _("Equity"), "points": _equity_series(details)}],
        }
        others = [
            other
            for other in service.list_jobs(
                session, tenant_id, statuses=(JobStatus.SUCCEEDED,), kinds=(JobKind.BACKTEST,)
            )
            if other.id != job.id
        ]
    if summary is not None and job.kind == JobKind.HYPEROPT:
        found = result_files.hyperopt_epochs(session, job)
        if found is not None:
            if epochs == "epoch":
                epoch_rows = sorted(found, key=lambda epoch: epoch.current_epoch)
            else:
                epochs = "loss"
                epoch_rows = sorted(
                    found,
                    key=lambda epoch: (epoch.loss is None, epoch.loss or 0, epoch.current_epoch),
                )
    trades = details.trades if details is not None else []
    shown = sorted(trades, key=lambda trade: trade.open_timestamp)[-TRADES_SHOWN:]
    labels = _labels_of(session, tenant_id, [job, *others])
    context = {
        "job": job,
        "status": status,
        "final": status.is_final,
        "label": labels.get(job.strategy_version_id),
        "labels": labels,
        "config_rows": _config_rows(job, _, fmt),
        "log_text": "".join(text for _seq, text in chunks),
        "log_after": chunks[-1][0] if chunks else 0,
        "summary": summary,
        "details": details,
        "trades": shown,
        "tagged": any(trade.enter_tag for trade in shown),
        "trades_total": len(trades),
        "trades_shown": TRADES_SHOWN,
        "epoch_rows": epoch_rows,
        "epochs_order": epochs,
        "chart": chart,
        "others": others,
        "market_data": label(job.market_data_source) if job.market_data_source else None,
        "run_seconds": _run_seconds(job),
        "wait_seconds": (
            (job.started_at or job.finished_at or utcnow()) - job.created_at
        ).total_seconds(),
        "cancellable": not status.is_final,
        "time_of": lambda ms: datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None,
    }
    return _render(request, "jobs/detail.html", context)


@router.post("/{job_id:uuid}/cancel")
def cancel_job(
    session: SessionDep,
    principal: PagePrincipalDep,
    tenant_id: PageTenantDep,
    ip: ClientIpDep,
    job_id: uuid.UUID,
    back: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        service.cancel_job(session, principal, tenant_id, job_id, ip)
    except Conflict:
        # It ended meanwhile: its page says how.
        session.rollback()
    target = "/app/jobs" if back == "list" else f"/app/jobs/{job_id}"
    return RedirectResponse(target, status_code=303)


# --- downloads -----------------------------------------------------------------------------


@router.get("/{job_id:uuid}/logs.txt")
def download_logs(session: SessionDep, tenant_id: PageTenantDep, job_id: uuid.UUID) -> Response:
    retention.require_output_kept(session, service.get_job(session, tenant_id, job_id))
    return PlainTextResponse(
        service.job_logs(session, tenant_id, job_id),
        headers={
            "Content-Disposition": f'attachment; filename="job-{job_id}.log"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/{job_id:uuid}/archive")
def download_archive(session: SessionDep, tenant_id: PageTenantDep, job_id: uuid.UUID) -> Response:
    """freqtrade's raw result file, as the API serves it: an attachment, never rendered."""
    retention.require_output_kept(session, service.get_job(session, tenant_id, job_id))
    archive = service.job_archive(session, tenant_id, job_id)
    return Response(
        archive.content,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{archive.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Digest": f"sha-256={archive.sha256}",
        },
    )


@router.get("/{job_id:uuid}/params")
def download_parameters(
    session: SessionDep, tenant_id: PageTenantDep, job_id: uuid.UUID
) -> Response:
    """A hyperopt's best parameters as freqtrade's `<Strategy>.json`, as the API serves it."""
    filename, content = service.job_parameter_file(session, tenant_id, job_id)
    ordered = {key: content[key] for key in PARAMETER_FILE_KEYS}
    return Response(
        json.dumps(ordered, indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- live logs -----------------------------------------------------------------------------


def _stream_tenant(request: Request) -> str:
    """PageTenantDep without a database session held for the whole request: a stream lasts
    minutes and must not keep a connection from the pool."""
    with session_scope() as session:
        return page_tenant(page_principal(request, session))


def _poll(tenant_id: str, job_id: uuid.UUID, after: int) -> tuple[list[tuple[int, str]], str]:
    with session_scope() as session:
        chunks = service.log_chunks_after(
            session, tenant_id, job_id, after=after, limit=FOLLOW_PAGE
        )
        return chunks, service.get_job(session, tenant_id, job_id).status


async def _follow(
    request: Request, tenant_id: str, job_id: uuid.UUID, after: int, lease: streams.StreamLease
) -> AsyncIterator[str]:
    """New log chunks as `log` events (id = seq), the status as `status` events when it
    changes, then one `end` event with the final status; polls the database in worker threads
    until the job ended with nothing more to send, the time limit, or the browser's departure.
    Gives its lease back however it ends."""
    try:
        yield f"retry: {FOLLOW_RETRY_MS}\n\n"
        deadline = anyio.current_time() + FOLLOW_MAX_SECONDS
        quiet_polls = 0
        shown_status = ""
        while True:
            try:
                chunks, status = await run_in_threadpool(_poll, tenant_id, job_id, after)
            except NotFound:
                yield streams.event("end", "gone")
                return
            if status != shown_status:
                shown_status = status
                yield streams.event("status", status)
            for seq, text in chunks:
                yield streams.event("log", text, seq)
                after = seq
            if len(chunks) == FOLLOW_PAGE:
                continue
            if JobStatus(status).is_final and not chunks:
                yield streams.event("end", status)
                return
            if anyio.current_time() >= deadline or await request.is_disconnected():
                return
            quiet_polls = 0 if chunks else quiet_polls + 1
            if quiet_polls >= FOLLOW_KEEPALIVE_POLLS:
                quiet_polls = 0
                yield ": keep-alive\n\n"
            await anyio.sleep(FOLLOW_POLL_SECONDS)
    finally:
        lease.release()


@router.get("/{job_id:uuid}/logs/stream")
async def follow_logs(
    request: Request,
    job_id: uuid.UUID,
    tenant_id: Annotated[str, Depends(_stream_tenant)],
    after: Annotated[int, Query(ge=-1, le=2**31 - 1)] = -1,
) -> Response:
    """The job's log as a server-sent event stream, for the page's script (EventSource sends
    the session cookie; the API's stream takes a bearer token only). An account follows as
    many streams at once as through the API, and they count together."""
    resume = request.headers.get("last-event-id", "")
    if _DIGITS.fullmatch(resume):
        after = max(after, int(resume))
    # Also the ownership check: another tenant's job answers 404 before any stream opens.
    await run_in_threadpool(_poll, tenant_id, job_id, after)
    lease = streams.stream_registry().acquire(tenant_id)
    return StreamingResponse(
        _follow(request, tenant_id, job_id, after, lease),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-store"},
        # Also when the body never starts (the browser left at once): release is idempotent.
        background=BackgroundTask(lease.release),
    )
