"""The ``his-pacs-ws`` command: serve, migrate, wsdl, and the administration commands."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from his_pacs_ws import __version__, admin, maintenance, viewmode
from his_pacs_ws.config import LOG_FORMATS, ConfigError, Settings
from his_pacs_ws.web import commands as operators

log = logging.getLogger("his_pacs_ws")


def database_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("database (default: embedded PostgreSQL under --data-dir)")
    group.add_argument("--database-url", help="PostgreSQL URL (env HIS_PACS_DATABASE_URL)")
    group.add_argument("--data-dir", type=Path,
                       help="directory of the embedded PostgreSQL and the secret key "
                            "(env HIS_PACS_DATA_DIR, default ./var)")


def _number(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="his-pacs-ws", description=__doc__)
    parser.add_argument("--version", action="version", version=f"his-pacs-ws {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, then serve both SOAP services (gunicorn)")
    database_options(serve)
    serve.add_argument("--host", help="bind address (env HIS_PACS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=_number(1, 65535), help="port (env HIS_PACS_PORT, default 8000)")
    serve.add_argument("--workers", type=_number(1, 64), help="sync worker processes (env HIS_PACS_WORKERS, default 2)")
    serve.add_argument("--log-format", choices=LOG_FORMATS,
                       help="text, logfmt or json (env HIS_PACS_LOG_FORMAT, default text)")
    serve.add_argument("--deliverers", type=_number(0, 64),
                       help="push deliverer processes to start, 0 when they run elsewhere "
                            "(env HIS_PACS_DELIVERERS, default 1)")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    database_options(migrate)
    migrate.set_defaults(run=cmd_migrate)

    wsdl = commands.add_parser("wsdl", help="write the WSDL snapshots his.wsdl and pacs.wsdl")
    wsdl.add_argument("--out", type=Path, default=Path("wsdl"), help="directory (default ./wsdl)")
    wsdl.add_argument("--base-url", default="http://localhost:8000",
                      help="where the snapshot says the services are (default http://localhost:8000)")
    wsdl.set_defaults(run=cmd_wsdl)

    admin.register(commands, database_options)
    maintenance.register(commands, database_options)
    viewmode.register(commands, database_options)
    operators.register(commands, database_options)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env().with_overrides(
        database_url=getattr(args, "database_url", None),
        data_dir=getattr(args, "data_dir", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
        log_format=getattr(args, "log_format", None),
        deliverers=getattr(args, "deliverers", None),
    )
    settings.validate()
    return settings


def _resolve(settings: Settings, *, create: bool) -> str:
    from his_pacs_ws.db.engine import resolve_database_url
    from his_pacs_ws.db.errors import url_problem

    if settings.database_url and (problem := url_problem(settings.database_url)):
        raise CommandError(problem)
    from his_pacs_ws.config import parse_listen

    listen = parse_listen(settings.views_listen) if settings.views_listen else None
    return resolve_database_url(settings.database_url, settings.data_dir, listen, create=create)


def migrated_database(settings: Settings, *, wait: bool = False) -> str:
    """The database URL (starting the embedded server if that is the one), migrated.
    With ``wait``, a server that does not answer yet is waited for."""
    from his_pacs_ws.db import migrate
    from his_pacs_ws.db.engine import make_engine, wait_for_database

    url = _resolve(settings, create=True)
    if wait:
        wait_for_database(url)
    engine = make_engine(url, pool_size=1)
    try:
        migrate.upgrade(engine)
        log.info("database schema at revision %s", migrate.current_revision(engine))
    finally:
        engine.dispose()
    return url


def current_database(settings: Settings) -> str:
    """The database URL for an administration command: an existing database whose schema
    is the one this code needs. Nothing is created or migrated here."""
    from his_pacs_ws.db import migrate
    from his_pacs_ws.db.engine import make_engine

    url = _resolve(settings, create=False)
    engine = make_engine(url, pool_size=1)
    try:
        migrate.require_current(engine)
    finally:
        engine.dispose()
    return url


def describe_database(settings: Settings) -> str:
    from his_pacs_ws.db.errors import safe_url

    if settings.database_url:
        return safe_url(settings.database_url)
    return f"embedded PostgreSQL in {Path(settings.data_dir).expanduser().resolve()}"


class CommandError(RuntimeError):
    """A command cannot go on; its message is the one line the operator sees."""


def cmd_migrate(settings: Settings, args) -> int:
    migrated_database(settings)
    return 0


def cmd_serve(settings: Settings, args) -> int:
    from his_pacs_ws.server import check_bind, serve

    check_bind(settings.host, settings.port)
    try:
        url = migrated_database(settings, wait=True)
    except KeyboardInterrupt:  # stopped while waiting for the database
        return 130
    key_source = _open_key(settings, url) if settings.auth else None
    log.info(startup_line(settings, url, key_source))
    with viewmode.inbox_processor(settings, url):
        serve(settings, url)
    return 0


def _open_key(settings: Settings, url: str) -> str:
    """Where the secret key comes from, after checking it opens the stored passwords."""
    from his_pacs_ws.services.context import open_context
    from his_pacs_ws.services.keys import created_notice, open_key

    context = open_context(settings, url)
    try:
        key = open_key(settings, context.uow(), create=True)
    finally:
        context.engine.dispose()
    if key.created:
        log.warning(created_notice(key))
    return key.source


def startup_line(settings: Settings, url: str, key_source: str | None) -> str:
    """The settings in effect, in one line: what an operator checks first."""
    from his_pacs_ws.db import migrate

    by_department = ",".join(f"{d}={p.value}" for d, p in sorted(settings.charge_point_by_department.items()))
    auth = f"on (key {key_source}, token window {settings.token_window_seconds}s)" if settings.auth else "OFF"
    return (f"his-pacs-ws {__version__} serving http://{settings.host}:{settings.port} with {settings.workers} "
            f"worker{'s' if settings.workers != 1 else ''}; database {describe_database(settings)} (schema {migrate.head()}); auth {auth}; "
            f"time zone {settings.timezone}; charge point {settings.charge_point.value}"
            f"{' (' + by_department + ')' if by_department else ''}; critical-value deadline "
            f"{settings.critical_ack_minutes} min; max request {settings.max_request_bytes} bytes; "
            f"public URL {settings.public_url or '(each request)'}; log {settings.log_level} {settings.log_format}")


def cmd_wsdl(settings: Settings, args) -> int:
    from his_pacs_ws.soap.wsdl import write_snapshots

    for path in write_snapshots(args.out, args.base_url.rstrip("/")):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings(args)
    except ConfigError as err:
        print(f"his-pacs-ws: {err}", file=sys.stderr)
        return 2
    from his_pacs_ws.logs import configure

    configure(settings)
    try:
        return args.run(settings, args)
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = _one_line(exc, settings)
        if message is None:
            raise
        print(f"his-pacs-ws: {message}", file=sys.stderr)
        return 2 if _is_setting_problem(exc) else 1


def _is_setting_problem(exc: Exception) -> bool:
    from his_pacs_ws.services.secrets import SecretKeyError

    return isinstance(exc, SecretKeyError)


def _one_line(exc: Exception, settings: Settings) -> str | None:
    """The operator's message for the expected failures; None for a bug (traceback)."""
    from his_pacs_ws.db.embedded import EmbeddedFailed, NoEmbeddedDatabase
    from his_pacs_ws.db.errors import describe
    from his_pacs_ws.db.migrate import SchemaNotCurrent
    from his_pacs_ws.db.backup import BackupError
    from his_pacs_ws.server import BindError
    from his_pacs_ws.services.secrets import SecretKeyError

    if isinstance(exc, (CommandError, NoEmbeddedDatabase, EmbeddedFailed, SchemaNotCurrent, SecretKeyError,
                        BindError, BackupError)):
        return str(exc)
    return describe(exc, settings.database_url)


if __name__ == "__main__":  # python -m his_pacs_ws.cli: run the module the others import, not a copy
    from his_pacs_ws import cli

    sys.exit(cli.main())
