"""The ``his-pacs-ws`` command: serve, migrate, wsdl, and the administration commands."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from his_pacs_ws import __version__, admin, viewmode
from his_pacs_ws.config import ConfigError, Settings
from his_pacs_ws.web import commands as operators

log = logging.getLogger("his_pacs_ws")


def database_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("database (default: embedded PostgreSQL under --data-dir)")
    group.add_argument("--database-url", help="PostgreSQL URL (env HIS_PACS_DATABASE_URL)")
    group.add_argument("--data-dir", type=Path,
                       help="directory of the embedded PostgreSQL and the secret key "
                            "(env HIS_PACS_DATA_DIR, default ./var)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="his-pacs-ws", description=__doc__)
    parser.add_argument("--version", action="version", version=f"his-pacs-ws {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, then serve both SOAP services (gunicorn)")
    database_options(serve)
    serve.add_argument("--host", help="bind address (env HIS_PACS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env HIS_PACS_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="sync worker processes (env HIS_PACS_WORKERS, default 2)")
    serve.add_argument("--deliverers", type=int,
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
    viewmode.register(commands, database_options)
    operators.register(commands, database_options)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    return settings.with_overrides(
        database_url=getattr(args, "database_url", None),
        data_dir=getattr(args, "data_dir", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        workers=getattr(args, "workers", None),
        deliverers=getattr(args, "deliverers", None),
    )


def migrated_database(settings: Settings, *, wait: bool = False) -> str:
    """The database URL (starting the embedded server if that is the one), migrated.
    With ``wait``, a server that does not answer yet is waited for."""
    from his_pacs_ws.db import migrate
    from his_pacs_ws.db.engine import make_engine, resolve_database_url, wait_for_database

    from his_pacs_ws.config import parse_listen

    listen = parse_listen(settings.views_listen) if settings.views_listen else None
    url = resolve_database_url(settings.database_url, settings.data_dir, listen)
    if wait:
        wait_for_database(url)
    engine = make_engine(url, pool_size=1)
    try:
        migrate.upgrade(engine)
        log.info("database schema at revision %s", migrate.current_revision(engine))
    finally:
        engine.dispose()
    return url


def cmd_migrate(settings: Settings, args) -> int:
    migrated_database(settings)
    return 0


def cmd_serve(settings: Settings, args) -> int:
    from his_pacs_ws.server import serve

    try:
        url = migrated_database(settings, wait=True)
    except KeyboardInterrupt:  # stopped while waiting for the database
        return 130
    if settings.auth and (problem := _key_problem(settings, url)):
        print(f"his-pacs-ws: {problem}", file=sys.stderr)
        return 2
    with viewmode.inbox_processor(settings, url):
        serve(settings, url)
    return 0


def _key_problem(settings: Settings, url: str) -> str | None:
    from his_pacs_ws.services.context import open_context
    from his_pacs_ws.services.secrets import SecretBox, SecretKeyError, load_key
    from his_pacs_ws.services.systems import unreadable_secrets

    try:
        box = SecretBox(load_key(settings.secret_key, settings.data_dir, create=True))
    except SecretKeyError as err:
        return str(err)
    context = open_context(settings, url)
    try:
        names = unreadable_secrets(context.uow(), box)
    finally:
        context.engine.dispose()
    if names:
        return (f"the secret key cannot open the passwords of {', '.join(names)}: start with the key they "
                "were added with (HIS_PACS_SECRET_KEY or secret.key in the data dir), or set new passwords")
    return None


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
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    return args.run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
