"""What the entry points hold for the life of a process: settings and the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import Breaker, Engine, UnitOfWork, is_unreachable, make_engine, session_factory
from his_pacs_ws.db.repositories import call_record_statement, call_recorded, record_call
from his_pacs_ws.db.spool import CallSpool

log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: Settings
    engine: Engine | None = None
    serving: bool = False  # a server's: a breaker in front of the database, a spool behind the record
    _sessions: Any = field(init=False, default=None)
    breaker: Breaker | None = field(init=False, default=None)
    spool: CallSpool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.engine is not None:
            self._sessions = session_factory(self.engine)
        if self.engine is not None and self.serving:
            self.breaker = Breaker(self.engine)
            self.spool = CallSpool(self.settings.data_dir / "spool")
            self.breaker.on_close = self._replay

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self._sessions, self.breaker)

    def database_ok(self) -> bool:
        """Whether the database answers, for /health (monitoring, load balancers)."""
        try:
            with self.uow().reading() as uow:
                uow.ping()
            return True
        except Exception:
            return False

    def record_call(self, **values) -> None:
        """One call record, in a transaction of its own: it outlives a rolled-back call.
        While the database cannot take it, it waits in the spool."""
        if self.engine is None:
            raise RuntimeError("this context has no database")
        if self.spool is None or self.breaker is None:
            record_call(self.engine, values)
            return
        if self.breaker.open:
            self.spool.append(values)
            return
        try:
            record_call(self.engine, values)
        except Exception as exc:
            self.spool.append(values)
            if is_unreachable(exc):
                self.breaker.trip()
            log.warning("call record spooled: %s", type(exc).__name__)
            return
        if self.spool.pending():
            self._replay()

    def finish_call(self, uow: UnitOfWork, values: dict) -> None:
        """Commit a call's held transaction together with its record (one COMMIT, one wait
        for the disk). Raises if it could not: then nothing of the call was stored."""
        uow.finish(*call_record_statement(values))
        if self.spool is not None and self.spool.pending():
            self._replay()

    def was_recorded(self, values: dict) -> bool:
        """Whether this call record is stored (a COMMIT whose answer was lost may have gone
        through). False when the database cannot tell now."""
        if self.engine is None or (self.breaker is not None and self.breaker.open):
            return False
        try:
            return call_recorded(self.engine, values)
        except Exception as exc:
            log.warning("could not check whether a call was committed: %s", type(exc).__name__)
            return False

    def _replay(self) -> None:
        if self.spool is None or self.engine is None:
            return
        try:
            self.spool.replay(self.engine)
        except Exception as exc:
            log.warning("spooled call records not stored yet: %s", type(exc).__name__)


def open_context(settings: Settings, database_url: str, *, serving: bool = False) -> Context:
    """A process's context. A server's bounds every database wait by the timeout setting;
    the administration commands' only their connection attempts (a prune may take long)."""
    timeout = settings.db_timeout_seconds if serving else None
    return Context(settings, make_engine(database_url, timeout=timeout), serving=serving)
