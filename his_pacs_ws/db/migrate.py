"""Schema migrations: applied by `his-pacs-ws migrate` and when `serve` starts."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).with_name("migrations")
# Any number will do, as long as every process that migrates uses the same one.
_MIGRATION_LOCK = 0x4849_5350  # "HISP"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Concurrent callers wait for each other."""
    config = _config()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this version of the code was written for."""


def head() -> str:
    """The revision this version of the code needs."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def require_current(engine: Engine) -> str:
    """The schema revision, if it is the one this code needs; else SchemaNotCurrent saying
    what to do. Read-only: the commands that check this never change a schema."""
    from alembic.script import ScriptDirectory

    current, needed = current_revision(engine), head()
    if current == needed:
        return current
    if current is None:
        raise SchemaNotCurrent("the database has no his-pacs-ws schema yet: run `his-pacs-ws migrate` "
                               "(or start `serve`) on it first")
    known = {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}
    if current not in known:
        raise SchemaNotCurrent(f"the database's schema ({current}) is newer than this his-pacs-ws "
                               f"(which knows up to {needed}): use the version the servers run")
    raise SchemaNotCurrent(f"the database's schema is at {current}, this his-pacs-ws needs {needed}: "
                           "upgrade it with `his-pacs-ws migrate` (after a backup: see docs/OPERATIONS.md)")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def generate(engine: Engine, message: str) -> None:
    """For developers changing models.py: autogenerate the next revision against a database
    at head, then review it and name it like the others (0005_...)."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=True)
