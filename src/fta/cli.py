"""`fta` command line: one entry point for every process and operator task."""

from __future__ import annotations

import argparse
import gc
import getpass
import logging
import os
import sys
from datetime import timedelta

from fta.logs import configure_logging


def _migrate(_: argparse.Namespace) -> int:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from fta.audit.service import seal_unkeyed_chains
    from fta.migrate import MigrationSettings, upgrade

    settings = MigrationSettings()
    url = settings.database_url.get_secret_value()
    upgrade(url, settings.database_runtime_role)
    log = logging.getLogger("fta")
    log.info("database schema is up to date")
    engine = create_engine(url)
    try:
        with Session(engine) as session, session.begin():
            sealed = seal_unkeyed_chains(session, settings.audit_key.get_secret_value().encode())
    finally:
        engine.dispose()
    if sealed:
        log.info("audit chains written before keying sealed: %d", len(sealed))
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from fta.audit.models import AuditChainHead
    from fta.audit.service import chain_names, verify_chain
    from fta.db import session_scope

    broken = 0
    with session_scope() as session:
        names = [args.chain] if args.chain else chain_names(session)
        for name in names:
            at = verify_chain(session, name)
            head = session.get(AuditChainHead, name)
            # The heads, kept outside the database, show a chain cut short later on.
            seq, link = (head.seq, head.hash) if head else (0, "-")
            print(f"{name} {seq} {link} {'ok' if at is None else f'broken at {at}'}")
            broken += at is not None
    if broken:
        print(f"error: {broken} of {len(names)} audit chains broken", file=sys.stderr)
        return 1
    print(f"{len(names)} audit chains intact", file=sys.stderr)
    return 0


def _portal(args: argparse.Namespace) -> int:
    import uvicorn

    from fta.portal.app import create_app

    app = create_app()
    # What start-up made (modules, routes, models) lives as long as the process: frozen, it
    # is out of the collector's sight, and a full collection walks only what requests made
    # instead of pausing every request in flight for tens of milliseconds.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        proxy_headers=False,
        access_log=False,
        log_config=None,
    )
    return 0


def _worker(_: argparse.Namespace) -> int:
    from fta.worker.main import run_worker

    run_worker()
    return 0


def _gateway(args: argparse.Namespace) -> int:
    from fta.gateway.__main__ import main as gateway_main

    gateway_main()
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    from fta.accounts.service import create_admin
    from fta.db import session_scope
    from fta.errors import DomainError

    password = os.environ.get("FTA_ADMIN_PASSWORD") or getpass.getpass("Admin password: ")
    try:
        with session_scope() as session:
            user = create_admin(session, email=args.email, password=password)
            print(f"admin {user.email} created ({user.id})")
    except DomainError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    return 0


def _mail_outbox(args: argparse.Namespace) -> int:
    from fta.db import session_scope
    from fta.mail import service as mail

    with session_scope() as session:
        waiting = mail.waiting_for(session, args.to)
        if args.link:
            link = next((m.link for m in waiting if m.link), None)
            if link is None:
                print(f"error: no unsent mail with a link to {args.to}", file=sys.stderr)
                return 1
            print(link)
            return 0
        for waiting_mail in waiting:
            print(f"{waiting_mail.created_at:%Y-%m-%d %H:%M} UTC  {waiting_mail.subject}")
            print(waiting_mail.body)
    return 0


def _billing_alerts(args: argparse.Namespace) -> int:
    import fta.models  # noqa: F401 - the tables an alert's keys refer to
    from fta.billing.alerts import service as alerts
    from fta.db import session_scope, utcnow
    from fta.errors import DomainError

    with session_scope() as session:
        if args.resolve is not None:
            try:
                alerts.resolve(
                    session,
                    args.resolve,
                    by=f"operator:{getpass.getuser()}",
                    resolution=args.note or "",
                    now=utcnow(),
                )
            except DomainError as exc:
                print(f"error: {exc.detail}", file=sys.stderr)
                return 1
            print(f"billing alert {args.resolve} resolved")
            return 0
        for alert in alerts.open_alerts(session):
            held = " QUARANTINED" if alert.blocking else ""
            print(
                f"{alert.id}\t{alert.last_seen_at:%Y-%m-%d %H:%M} UTC\t{alert.kind}{held}\t"
                f"{alert.key}\t×{alert.occurrences}\t{alert.message}"
            )
    return 0


def _month(text: str) -> str:
    """A --month argument: YYYY-MM, refused by argparse (exit 2) otherwise."""
    from fta.access.periods import parse_period
    from fta.errors import Invalid

    try:
        return parse_period(text)
    except Invalid as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


def _des_export(args: argparse.Namespace) -> int:
    from fta.access.periods import period_start
    from fta.billing.vat_controls import des_csv, des_lines
    from fta.db import session_scope

    with session_scope() as session:
        sys.stdout.write(des_csv(des_lines(session, period_start(args.month).date())))
    return 0


def _sales_journal(args: argparse.Namespace) -> int:
    from fta.access.periods import period_end, period_start
    from fta.billing.invoices.journal import journal, journal_csv, missing_numbers
    from fta.db import session_scope

    first_day = period_start(args.month).date()
    last_day = period_end(args.month).date() - timedelta(days=1)
    with session_scope() as session:
        sys.stdout.write(journal_csv(journal(session, first_day, last_day)))
        missing = missing_numbers(session, first_day.year)
    if missing:
        print(f"error: numbers without a document in {first_day.year}: {missing}", file=sys.stderr)
        return 1
    return 0


def _invoice_pdf(args: argparse.Namespace) -> int:
    from fta.billing.invoices.service import issued_document
    from fta.db import session_scope
    from fta.errors import NotFound

    with session_scope() as session:
        try:
            pdf = issued_document(session, args.number).pdf
        except NotFound as missing:
            print(f"error: {missing.detail}", file=sys.stderr)
            return 1
    if args.output:
        with open(args.output, "wb") as out:
            out.write(pdf)
    else:
        sys.stdout.buffer.write(pdf)
    return 0


def _market_data_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fta.db import session_scope
    from fta.market_data.ohlcv_files import OhlcvFileError
    from fta.market_data.recorded import import_files
    from fta.settings import get_settings

    store_root = get_settings().market_data_store
    try:
        with session_scope() as session:
            imported = import_files(
                session, store_root, args.exchange, [Path(p) for p in args.paths]
            )
            lines = [
                f"{item.series.describe()} ({item.series.candles} candles, {item.added} new, "
                f"sha256 {item.series.sha256})"
                for item in imported
            ]
    except OhlcvFileError as exc:
        print(f"error: {exc}; nothing was imported", file=sys.stderr)
        return 1
    for line in lines:
        print(f"{args.exchange} {line}")
    return 0


def _market_data_list(_: argparse.Namespace) -> int:
    from fta.db import session_scope
    from fta.market_data.recorded import listing

    with session_scope() as session:
        for series in listing(session):
            print(
                f"{series.exchange} {series.describe()} ({series.candles} candles, "
                f"sha256 {series.sha256}, imported {series.imported_at:%Y-%m-%d %H:%M} UTC)"
            )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fta", description="fta platform processes and tasks")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "migrate", help="apply database migrations as the owner, and grant the runtime role"
    ).set_defaults(run=_migrate)
    portal = commands.add_parser("portal", help="serve the web portal and REST API")
    portal.add_argument("--host", default="0.0.0.0")  # noqa: S104 - inside its container
    portal.add_argument("--port", type=int, default=8000)
    portal.set_defaults(run=_portal)
    commands.add_parser("worker", help="run queued jobs").set_defaults(run=_worker)
    verify = commands.add_parser(
        "audit-verify",
        help="check the audit chains under the audit key; prints each chain's head and the "
        "first broken link, exits 1 if any",
    )
    verify.add_argument("--chain", help="one chain: a tenant id, or 'platform'")
    verify.set_defaults(run=_audit_verify)
    commands.add_parser("gateway", help="serve the market-data gateway").set_defaults(run=_gateway)
    admin = commands.add_parser(
        "create-admin",
        help="create a platform administrator (password from FTA_ADMIN_PASSWORD or prompted)",
    )
    admin.add_argument("--email", required=True)
    admin.set_defaults(run=_create_admin)
    outbox = commands.add_parser(
        "mail-outbox",
        help="show the mails to an address that wait in the outbox (no SMTP server set, or "
        "not delivered yet)",
    )
    outbox.add_argument("--to", required=True, help="the recipient's address")
    outbox.add_argument("--link", action="store_true", help="print only the newest mail's link")
    outbox.set_defaults(run=_mail_outbox)
    billing_alerts = commands.add_parser(
        "billing-alerts",
        help="list the open billing alerts (quarantined items stay out of the billing round), "
        "or resolve one so that its item is tried again",
    )
    billing_alerts.add_argument("--resolve", type=int, metavar="ID", help="the alert to close")
    billing_alerts.add_argument("--note", help="what was done about it (with --resolve)")
    billing_alerts.set_defaults(run=_billing_alerts)
    des = commands.add_parser(
        "des-export",
        help="print as CSV the month's reverse-charge services per client VAT number, for the "
        "déclaration européenne de services (DES)",
    )
    des.add_argument("--month", required=True, type=_month, help="YYYY-MM")
    des.set_defaults(run=_des_export)
    sales = commands.add_parser(
        "sales-journal",
        help="print a month's invoices and credit notes as CSV for the accountant (credit "
        "notes negative, days in France); exits 1 if the year's numbering has a gap",
    )
    sales.add_argument("--month", required=True, type=_month, help="YYYY-MM")
    sales.set_defaults(run=_sales_journal)
    invoice_pdf = commands.add_parser(
        "invoice-pdf",
        help="write an invoice's or credit note's PDF as issued, whoever it was made out to "
        "(an erased account's too)",
    )
    invoice_pdf.add_argument("number", help="e.g. F-2026-000042")
    invoice_pdf.add_argument("--output", help="the file to write (default: standard output)")
    invoice_pdf.set_defaults(run=_invoice_pdf)
    market_data = commands.add_parser(
        "market-data", help="recorded market data, served in FTA_MARKET_DATA_MODE=recorded"
    )
    market_data_commands = market_data.add_subparsers(dest="market_data_command", required=True)
    market_import = market_data_commands.add_parser(
        "import",
        help="add the candles of freqtrade OHLCV files (<BASE>_<QUOTE>-<tf>.json or .json.gz; "
        "a directory: the files in it) to the recorded store; all files or none",
    )
    market_import.add_argument("--exchange", required=True, choices=["binance"])
    market_import.add_argument("paths", nargs="+", metavar="PATH")
    market_import.set_defaults(run=_market_data_import)
    market_data_commands.add_parser(
        "list", help="the recorded ranges: per exchange, pair and timeframe"
    ).set_defaults(run=_market_data_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
