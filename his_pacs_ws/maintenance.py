"""`backup` and `restore`: the database with pg_dump / pg_restore, and a reminder of the
key, which a backup of the database never holds (docs/OPERATIONS.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from his_pacs_ws.config import Settings


def register(commands, database_options) -> None:
    backup = commands.add_parser("backup", help="pg_dump the database (embedded or server) to a file")
    database_options(backup)
    backup.add_argument("--out", type=Path, required=True, help="the archive to write (pg_dump custom format)")
    backup.set_defaults(run=cmd_backup)
    restore = commands.add_parser("restore", help="restore a backup into an empty database")
    database_options(restore)
    restore.add_argument("archive", type=Path)
    restore.set_defaults(run=cmd_restore)


def _say(message: str) -> None:
    print(f"his-pacs-ws: {message}", file=sys.stderr)


def cmd_backup(settings: Settings, args) -> int:
    from his_pacs_ws.cli import _resolve, describe_database
    from his_pacs_ws.db import backup, migrate
    from his_pacs_ws.db.engine import make_engine
    from his_pacs_ws.services.keys import key_path

    url = _resolve(settings, create=False)  # any schema: the backup before an upgrade too
    engine = make_engine(url, pool_size=1)
    try:
        revision = migrate.current_revision(engine)
    finally:
        engine.dispose()
    backup.dump(url, args.out)
    key = "HIS_PACS_SECRET_KEY" if settings.secret_key else str(key_path(settings))
    print(f"backed up {describe_database(settings)} (schema {revision}) to {args.out} "
          f"({args.out.stat().st_size} bytes)")
    _say(f"the backup does not hold the secret key: keep a copy of {key} apart from it, or every partner "
         "needs a new password after a restore")
    return 0


def cmd_restore(settings: Settings, args) -> int:
    from his_pacs_ws.cli import CommandError, _resolve, describe_database
    from his_pacs_ws.db import backup, migrate
    from his_pacs_ws.db.engine import make_engine
    from his_pacs_ws.services.context import open_context
    from his_pacs_ws.services.keys import open_key
    from his_pacs_ws.services.secrets import SecretKeyError
    from his_pacs_ws.services.systems import list_systems

    if not args.archive.is_file():
        raise CommandError(f"no backup at {args.archive}")
    url = _resolve(settings, create=True)  # restoring is making a database
    if not backup.is_empty(url):
        raise CommandError(f"{describe_database(settings)} is not empty: restore into a new data dir or an "
                           "empty database (createdb -O USER NAME)")
    backup.restore(url, args.archive)
    engine = make_engine(url, pool_size=1)
    try:
        revision = migrate.current_revision(engine)
    finally:
        engine.dispose()
    print(f"restored {args.archive} into {describe_database(settings)} (schema {revision})")
    if revision != migrate.head():
        _say(f"its schema is {revision}; this his-pacs-ws runs on {migrate.head()}: `his-pacs-ws migrate` next")
    context = open_context(settings, url)
    try:
        if list_systems(context.uow()):
            open_key(settings, context.uow(), create=False)
    except SecretKeyError as err:
        _say(f"before serving: {err}")
    finally:
        context.engine.dispose()
    return 0
