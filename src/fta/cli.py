"""`fta` command line: one entry point for every process and operator task."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from fta.logs import configure_logging


def _migrate(_: argparse.Namespace) -> int:
    from fta.migrate import upgrade

    upgrade()
    logging.getLogger("fta").info("database schema is up to date")
    return 0


def _portal(args: argparse.Namespace) -> int:
    import uvicorn

    from fta.portal.app import create_app

    uvicorn.run(
        create_app(),
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fta", description="fta platform processes and tasks")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=_migrate)
    portal = commands.add_parser("portal", help="serve the web portal and REST API")
    portal.add_argument("--host", default="0.0.0.0")  # noqa: S104 - inside its container
    portal.add_argument("--port", type=int, default=8000)
    portal.set_defaults(run=_portal)
    commands.add_parser("worker", help="run queued jobs").set_defaults(run=_worker)
    commands.add_parser("gateway", help="serve the market-data gateway").set_defaults(run=_gateway)
    admin = commands.add_parser(
        "create-admin",
        help="create a platform administrator (password from FTA_ADMIN_PASSWORD or prompted)",
    )
    admin.add_argument("--email", required=True)
    admin.set_defaults(run=_create_admin)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
