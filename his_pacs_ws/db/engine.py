"""Engines, the embedded PostgreSQL, and the unit of work."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from his_pacs_ws.db import embedded
from his_pacs_ws.db.clinical import CriticalValueRepository, EmrRepository, ReportRepository
from his_pacs_ws.db.outbox import OutboxRepository
from his_pacs_ws.db.records import CallRecordRepository
from his_pacs_ws.db.systems import SystemRepository
from his_pacs_ws.db.repositories import (
    ApplicationRepository,
    LedgerRepository,
    MessageRepository,
)
from his_pacs_ws.domain.errors import Unavailable

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "his_pacs"


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and use the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError("his-pacs-ws runs on PostgreSQL; got a %s URL" % parsed.drivername)
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    # No pre-ping: it costs a round trip on every checkout. After a database restart the
    # first call on a stale connection fails as the retryable Unavailable, and SQLAlchemy
    # drops the whole pool, so the caller's retry gets a fresh connection.
    return create_engine(
        normalize_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
    )


def start_embedded(data_dir: Path, *, create: bool = True) -> str:
    """Start (or join) the embedded PostgreSQL under ``data_dir`` and return its URL.

    Several processes may call this for the same directory: a running server is reused,
    and it is stopped when the last process using it exits. Without ``create``, a data dir
    that holds no database is refused (NoEmbeddedDatabase) rather than initialized.
    """
    if not create and not embedded.exists(data_dir):
        raise embedded.NoEmbeddedDatabase(embedded.missing_message(data_dir))
    with warnings.catch_warnings():  # its lock directory falls back to /tmp, as it should here
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver  # imported here: only the embedded mode needs it

    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every start at INFO

    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with pgserver.PostgresServer._lock:  # a serve killed with -9 must not keep the server up forever
        if dead := embedded.forget_dead_users(data_dir):
            log.warning("the embedded database's users %s had died without stopping it", dead)
    with embedded.failures_said_once(data_dir):  # initdb or pg_ctl refused: one line saying why
        server = pgserver.get_server(data_dir / "pgdata", cleanup_mode="stop")
    admin_url = server.get_uri()
    engine = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": EMBEDDED_DATABASE}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{EMBEDDED_DATABASE}"'))
    finally:
        engine.dispose()
    return make_url(normalize_url(admin_url)).set(database=EMBEDDED_DATABASE).render_as_string(
        hide_password=False
    )


def resolve_database_url(database_url: str | None, data_dir: Path, *, create: bool = True) -> str:
    """The configured server, or else the embedded one under ``data_dir``."""
    if database_url:
        return normalize_url(database_url)
    return start_embedded(data_dir, create=create)


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


class UnitOfWork:
    """One transaction. Commit is explicit; leaving the block without it rolls back.

    A lost database connection surfaces as the retryable ``Unavailable``.
    """

    def __init__(self, session_factory: sessionmaker[Session]):
        self._session_factory = session_factory
        self.session: Session

    def __enter__(self) -> "UnitOfWork":
        self.session = self._session_factory()
        self.applications = ApplicationRepository(self.session)
        self.ledger = LedgerRepository(self.session)
        self.messages = MessageRepository(self.session)
        self.reports = ReportRepository(self.session)
        self.critical_values = CriticalValueRepository(self.session)
        self.emr = EmrRepository(self.session)
        self.systems = SystemRepository(self.session)
        self.calls = CallRecordRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()
        if exc is not None and is_connection_error(exc):
            log.warning("database unavailable: %s", type(exc.orig if hasattr(exc, "orig") else exc).__name__)
            raise Unavailable("the database is unavailable; retry with the same MessageId") from exc

    def commit(self) -> None:
        self.session.commit()

    def ping(self) -> None:
        self.session.execute(text("SELECT 1"))

    def rollback(self) -> None:
        self.session.rollback()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)
