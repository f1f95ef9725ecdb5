"""The ``his-pacs-ws`` command: serve, migrate, wsdl."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from his_pacs_ws import __version__
from his_pacs_ws.config import ConfigError, Settings

log = logging.getLogger("his_pacs_ws")


def _database_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("database (default: embedded PostgreSQL under --data-dir)")
    group.add_argument("--database-url", help="PostgreSQL URL (env HIS_PACS_DATABASE_URL)")
    group.add_argument("--data-dir", type=Path,
                       help="directory of the embedded PostgreSQL (env HIS_PACS_DATA_DIR, default ./var)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="his-pacs-ws", description=__doc__)
    parser.add_argument("--version", action="version", version=f"his-pacs-ws {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, then serve both SOAP services (gunicorn)")
    _database_options(serve)
    serve.add_argument("--host", help="bind address (env HIS_PACS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env HIS_PACS_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="sync worker processes (env HIS_PACS_WORKERS, default 2)")

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    _database_options(migrate)

    critical = commands.add_parser(
        "critical-values", help="the critical-value loops, with who and when at every step (for audits)")
    _database_options(critical)
    critical.add_argument("--overdue", action="store_true", help="only values not received by their deadline")
    critical.add_argument("--since", help="reported at or after (date or date-time, hospital time)")
    critical.add_argument("--until", help="reported before (date or date-time, hospital time)")
    critical.add_argument("--department", help="the patient's department code")
    critical.add_argument("--status", action="append", choices=["RAISED", "RECEIVED", "HANDLED", "REVOKED"],
                          help="only these statuses (repeatable)")

    wsdl = commands.add_parser("wsdl", help="write the WSDL snapshots his.wsdl and pacs.wsdl")
    wsdl.add_argument("--out", type=Path, default=Path("wsdl"), help="directory (default ./wsdl)")
    wsdl.add_argument("--base-url", default="http://localhost:8000",
                      help="where the snapshot says the services are (default http://localhost:8000)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    return settings.with_overrides(
        database_url=getattr(args, "database_url", None),
        data_dir=getattr(args, "data_dir", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
    )


def _migrated_database(settings: Settings) -> str:
    from his_pacs_ws.db import migrate
    from his_pacs_ws.db.engine import make_engine, resolve_database_url

    url = resolve_database_url(settings.database_url, settings.data_dir)
    engine = make_engine(url, pool_size=1)
    try:
        migrate.upgrade(engine)
        log.info("database schema at revision %s", migrate.current_revision(engine))
    finally:
        engine.dispose()
    return url


def cmd_migrate(settings: Settings, args) -> int:
    _migrated_database(settings)
    return 0


def cmd_serve(settings: Settings, args) -> int:
    from his_pacs_ws.server import serve

    url = _migrated_database(settings)
    serve(settings, url)
    return 0


def cmd_critical_values(settings: Settings, args) -> int:
    from his_pacs_ws.console import parse_moment, table, when
    from his_pacs_ws.services.context import open_context
    from his_pacs_ws.services.critical_values import query_critical_values

    tz = settings.tz
    try:
        request = {
            "from": parse_moment(args.since, tz) if args.since else None,
            "to": parse_moment(args.until, tz) if args.until else None,
            "overdue_only": args.overdue, "department_code": args.department, "statuses": args.status,
        }
    except ValueError as err:
        print(f"his-pacs-ws: {err}", file=sys.stderr)
        return 2
    context = open_context(settings, _migrated_database(settings))
    values = query_critical_values(context.uow(), settings, "CLI", request)["critical_values"]

    def who(staff):
        return staff["name"] if staff else ""

    def minutes(value):
        return f"{value}" if value is not None else ""

    rows = [
        (cv["critical_value_no"], cv["status"], "yes" if cv["overdue"] else "", cv["application_no"],
         cv["patient_name"], cv["department_code"], cv["finding"],
         when(cv["reported_at"], tz), who(cv["reported_by"]), who(cv["reviewed_by"]), when(cv["ack_deadline"], tz),
         when(cv["received_at"], tz), who(cv["received_by"]), minutes(cv["minutes_to_receive"]),
         when(cv["handled_at"], tz), who(cv["handled_by"]), minutes(cv["minutes_to_handle"]),
         when(cv["revoked_at"], tz))
        for cv in values
    ]
    print(table(("No", "Status", "Overdue", "Application", "Patient", "Dept", "Finding", "Reported", "By",
                 "Checked by", "Deadline", "Received", "By", "Min", "Handled", "By", "Min", "Revoked"),
                rows, limits={6: 24}))
    overdue = sum(1 for cv in values if cv["overdue"])
    print(f"\n{len(values)} critical values, {overdue} overdue (deadline {settings.critical_ack_minutes} min); "
          f"times are {settings.timezone}")
    context.engine.dispose()
    return 0


def cmd_wsdl(settings: Settings, args) -> int:
    from his_pacs_ws.soap.wsdl import write_snapshots

    for path in write_snapshots(args.out, args.base_url.rstrip("/")):
        print(path)
    return 0


COMMANDS = {"serve": cmd_serve, "migrate": cmd_migrate, "wsdl": cmd_wsdl,
            "critical-values": cmd_critical_values}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as err:
        print(f"his-pacs-ws: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    return COMMANDS[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
