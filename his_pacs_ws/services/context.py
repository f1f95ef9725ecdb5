"""What the entry points hold for the life of a process: settings and the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import Engine, UnitOfWork, make_engine, session_factory
from his_pacs_ws.db.repositories import record_call


@dataclass
class Context:
    settings: Settings
    engine: Engine | None = None
    _sessions: Any = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.engine is not None:
            self._sessions = session_factory(self.engine)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self._sessions)

    def database_ok(self) -> bool:
        """Whether the database answers, for /health (monitoring, load balancers)."""
        try:
            with self.uow() as uow:
                uow.ping()
            return True
        except Exception:
            return False

    def record_call(self, **values) -> None:
        """One call record, in a transaction of its own: it outlives a rolled-back call."""
        if self.engine is None:
            raise RuntimeError("this context has no database")
        record_call(self.engine, values)


def open_context(settings: Settings, database_url: str) -> Context:
    return Context(settings, make_engine(database_url))
