"""`yikatong ...`: serve, migrate, demo, create-operator, audit/ledger verify, export-schema,
reader (the bridge in devices/)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from app.settings import Settings, SettingsError, load_settings


async def _with_database(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    from app.asgi import AppState
    from app.db import close_database, open_database

    AppState(settings).configure_domain()
    await open_database(settings.database_url)
    try:
        return await work()
    finally:
        await close_database()


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from app.db import migrate

    asyncio.run(migrate(settings.database_url))
    print(f"migrated ({settings.backend_label().split(' + ')[0]})")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app.asgi import create_app
    from app.db import migrate

    if args.workers < 1:
        print("refused: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and settings.redis_url is None:
        # Subscriptions and rate limits are per process without Redis.
        print("refused: --workers above 1 needs YIKATONG_REDIS_URL", file=sys.stderr)
        return 2
    asyncio.run(migrate(settings.database_url))
    if args.demo:
        cmd_demo(settings, args)
    print(
        f"Yikatong on http://{args.host}:{args.port}/graphql  ({settings.backend_label()}"
        f"{f', {args.workers} workers' if args.workers > 1 else ''})"
    )
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_level": "warning",
        "proxy_headers": True,
        "ws": "websockets-sansio",
    }
    if args.workers > 1:
        # Each worker process builds its own app (settings come from the environment).
        uvicorn.run("app.asgi:create_app", factory=True, workers=args.workers, **options)
    else:
        uvicorn.run(create_app(settings), **options)
    return 0


def cmd_demo(settings: Settings, _: argparse.Namespace) -> int:
    if settings.production:
        print("refused: demo data is never created in production", file=sys.stderr)
        return 2
    from app.demo import create_demo_data

    logins = asyncio.run(_with_database(settings, create_demo_data))
    print("Demo data ready. Logins (password for all: see below):")
    for line in logins:
        print("  " + line)
    return 0


def cmd_create_operator(settings: Settings, args: argparse.Namespace) -> int:
    from domain.errors import DomainError
    from domain.identity.service import create_operator

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    try:
        user = asyncio.run(
            _with_database(settings, lambda: create_operator(args.username, password))
        )
    except DomainError as exc:
        print(f"error {exc.code}: {exc.en}", file=sys.stderr)
        return 1
    print(f"operator {user.username} created ({user.id})")
    return 0


def cmd_audit_verify(settings: Settings, _: argparse.Namespace) -> int:
    from domain.audit.service import verify

    report = asyncio.run(_with_database(settings, verify))
    for problem in report.problems:
        print("VIOLATION " + problem)
    print(f"audit log: {report.records} records, {len(report.problems)} problems")
    return 0 if report.ok else 1


def cmd_ledger_verify(settings: Settings, _: argparse.Namespace) -> int:
    from domain.ledger.verify import Report, verify
    from domain.members.verify import verify as verify_points
    from domain.payments.verify import verify as verify_payments

    async def work() -> Report:
        report = await verify()
        await verify_payments(report)
        await verify_points(report)
        return report

    report = asyncio.run(_with_database(settings, work))
    for problem in report.problems:
        print("VIOLATION " + problem)
    print(
        f"ledger: {report.accounts} accounts, {report.transfers} transfers, {report.entries}"
        f" entries, {len(report.problems)} problems"
    )
    return 0 if report.ok else 1


def cmd_escrow_check(settings: Settings, _: argparse.Namespace) -> int:
    from domain.escrow.service import Position, daily_check

    async def work() -> list[Position]:
        return await daily_check()

    short = asyncio.run(_with_database(settings, work))
    for pos in short:
        print(
            f"SHORT {pos.merchant_id}: holds {pos.held / 100:.2f}, must hold"
            f" {pos.required / 100:.2f} of {pos.outstanding / 100:.2f} owed"
        )
    print(f"escrow: {len(short)} merchants short")
    return 1 if short else 0


def cmd_export_schema(settings: Settings | None, _: argparse.Namespace) -> int:
    from schema.root import schema

    sys.stdout.write(schema.as_str() + "\n")
    return 0


def cmd_reader(settings: Settings | None, args: argparse.Namespace) -> int:
    from devices.cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yikatong", description="Yikatong 一卡通 backend")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate, then serve /graphql")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="create the demo data first")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default 1; more than 1 needs YIKATONG_REDIS_URL)",
    )
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("demo", help="deterministic demo data; prints its logins").set_defaults(
        func=cmd_demo
    )
    op = sub.add_parser("create-operator", help="create a platform operator")
    op.add_argument("username")
    op.add_argument("--password-stdin", action="store_true")
    op.set_defaults(func=cmd_create_operator)
    audit = sub.add_parser("audit", help="audit log tools")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="check the hash chain").set_defaults(func=cmd_audit_verify)
    ledger = sub.add_parser("ledger", help="ledger tools")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    ledger_sub.add_parser("verify", help="re-derive balances, check invariants").set_defaults(
        func=cmd_ledger_verify
    )
    escrow = sub.add_parser("escrow", help="escrow custody tools")
    escrow_sub = escrow.add_subparsers(dest="escrow_command", required=True)
    escrow_sub.add_parser("check", help="today's required-vs-held check").set_defaults(
        func=cmd_escrow_check
    )
    sub.add_parser("export-schema", help="print the GraphQL SDL").set_defaults(
        func=cmd_export_schema, no_settings=True
    )
    reader = sub.add_parser("reader", help="NFC/IC reader bridge (PC/SC, needs pyscard)")
    reader.set_defaults(func=cmd_reader, no_settings=True)
    from devices.cli import add_arguments as reader_arguments

    reader_arguments(reader)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "no_settings", False):
        return int(args.func(None, args))
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    from app.logging import configure_logging

    configure_logging(settings.log_level, settings.log_json)
    return int(args.func(settings, args))


if __name__ == "__main__":
    sys.exit(main())
