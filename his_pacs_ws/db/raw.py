"""Statements below SQLAlchemy's execution layer, on the unit of work's own connection and
in its transaction: for what every call runs (the MessageId claim, the stored answer, the
call record) and a submission's inserts, where SQLAlchemy's per-statement work (compiling,
cache keys, result objects) costs more than PostgreSQL's.

The SQL is written out, prepared on first use, and its errors come out as SQLAlchemy's,
so the unit of work, the breaker and the spool treat them as every other statement's.
Parameters never appear in an error's text (they may be patient data)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Callable, Sequence

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

__all__ = ["Raw", "jsonb", "raw"]

_IDLE = psycopg.pq.TransactionStatus.IDLE


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%|%")


@lru_cache(maxsize=256)
def _numbered(sql: str) -> tuple[bytes, tuple[str, ...]]:
    """A statement with named parameters as PostgreSQL's own ``$1 ... $n``, and the names in
    that order (a name used twice is one parameter). psycopg parses a statement's
    placeholders on every execution once it is over 4 kB; a submission's is. Only
    ``%(name)s`` and ``%%`` are taken: anything else with a ``%`` is refused, as psycopg
    would refuse it."""
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match.group(0) == "%%":
            return "%"
        if match.group(1) is None:
            raise ValueError("a statement with named parameters may hold only %(name)s and %%")
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _PLACEHOLDER.sub(number, sql).encode(), tuple(names)


def jsonb(value: Any) -> Jsonb:
    """A JSON-safe value (see services.common.jsonable) as a jsonb parameter."""
    return Jsonb(value, dumps=_dumps)


class Raw:
    """One connection's cursor. ``one``/``all``/``run`` execute a statement now; ``defer``
    keeps one whose answer nobody needs, to go with the COMMIT; ``commit`` sends what was
    deferred, a last statement and the COMMIT in one round trip."""

    def __init__(self, connection: Connection):
        self._connection = connection
        fairy = connection.connection
        self._dbapi: psycopg.Connection = fairy.driver_connection  # type: ignore[assignment]
        self._cursor = self._dbapi.cursor()
        self._numbered = psycopg.RawCursor(self._dbapi)  # for statements with named parameters
        self._deferred: list[tuple[str, Sequence[Any] | dict | None]] = []
        self.before_commit: list[Callable[[], None]] = []  # e.g. write back changed rows

    def on(self, connection: Connection) -> bool:
        return self._connection is connection

    def _send(self, sql: str, params: Sequence[Any] | dict | None) -> psycopg.Cursor:
        if isinstance(params, dict):
            numbered, names = _numbered(sql)
            return self._numbered.execute(numbered, [params[name] for name in names], prepare=True)
        return self._cursor.execute(sql, params, prepare=True)

    def _execute(self, sql: str, params: Sequence[Any] | dict | None) -> psycopg.Cursor:
        try:
            if not self._dbapi.autocommit and self._dbapi.info.transaction_status == _IDLE:
                # BEGIN and the first statement in one round trip
                with self._dbapi.pipeline():
                    return self._send(sql, params)
            return self._send(sql, params)
        except psycopg.Error as err:
            raise self._translated(sql, err) from err

    def one(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple | None:
        return self._execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[tuple]:
        return self._execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] | dict | None = None) -> int:
        return self._execute(sql, params).rowcount

    def defer(self, sql: str, params: Sequence[Any] | dict | None = None) -> None:
        """Send this with the COMMIT (its errors surface there, and roll everything back)."""
        self._deferred.append((sql, params))

    def discard(self) -> None:
        """The transaction rolled back: what was deferred goes with it."""
        self._deferred.clear()
        self.before_commit.clear()

    def commit(self, sql: str | None = None, params: Sequence[Any] | dict | None = None) -> None:
        """Send the deferred statements, ``sql`` (if any) and the COMMIT in one round trip.
        SQLAlchemy's own commit that follows finds the transaction ended and sends nothing."""
        for hook in self.before_commit:
            hook()
        statements = [*self._deferred, *([(sql, params)] if sql is not None else [])]
        self.discard()
        current = "COMMIT"
        try:
            with self._dbapi.pipeline():
                for current, values in statements:
                    self._send(current, values)
                current = "COMMIT"
                self._dbapi.commit()
        except psycopg.Error as err:
            raise self._translated(current, err) from err

    def _translated(self, sql: str, err: psycopg.Error) -> DBAPIError:
        dialect = self._connection.dialect
        disconnect = dialect.is_disconnect(err, self._dbapi, self._cursor)
        if disconnect:  # as SQLAlchemy does: the pool's other connections are stale too
            fairy = self._connection.connection
            self._connection.engine.pool._invalidate(fairy, err)
            self._connection.invalidate(err)
        return DBAPIError.instance(sql, None, err, psycopg.Error, hide_parameters=True,
                                   connection_invalidated=disconnect, dialect=dialect)


def raw(session: Session) -> Raw:
    """The session's connection (beginning its transaction if need be), for raw statements."""
    connection = session.connection()
    cached = session.info.get("raw")
    if cached is None or cached._connection is not connection:
        cached = session.info["raw"] = Raw(connection)
    return cached
