"""Statements below SQLAlchemy's execution layer, on the unit of work's own connection and
in its transaction: for what every call runs (the MessageId claim, the stored answer, the
call record) and a submission's inserts, where SQLAlchemy's per-statement work (compiling,
cache keys, result objects) costs more than PostgreSQL's.

The SQL is written out, prepared on first use, and its errors come out as SQLAlchemy's,
so the unit of work, the breaker and the spool treat them as every other statement's.
Parameters never appear in an error's text (they may be patient data)."""

from __future__ import annotations

import json
from typing import Any, Sequence

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

__all__ = ["Raw", "jsonb", "raw"]

_IDLE = psycopg.pq.TransactionStatus.IDLE


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def jsonb(value: Any) -> Jsonb:
    """A JSON-safe value (see services.common.jsonable) as a jsonb parameter."""
    return Jsonb(value, dumps=_dumps)


class Raw:
    """One connection's cursor. ``one``/``all``/``run`` execute a statement; ``commit``
    sends a last statement and the COMMIT in one round trip."""

    def __init__(self, connection: Connection):
        self._connection = connection
        fairy = connection.connection
        self._dbapi: psycopg.Connection = fairy.driver_connection  # type: ignore[assignment]
        self._cursor = self._dbapi.cursor()

    def _execute(self, sql: str, params: Sequence[Any] | dict | None) -> psycopg.Cursor:
        try:
            if not self._dbapi.autocommit and self._dbapi.info.transaction_status == _IDLE:
                # BEGIN and the first statement in one round trip
                with self._dbapi.pipeline():
                    self._cursor.execute(sql, params, prepare=True)
            else:
                self._cursor.execute(sql, params, prepare=True)
        except psycopg.Error as err:
            raise self._translated(sql, err) from err
        return self._cursor

    def one(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple | None:
        return self._execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[tuple]:
        return self._execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] | dict | None = None) -> int:
        return self._execute(sql, params).rowcount

    def commit(self, sql: str | None = None, params: Sequence[Any] | dict | None = None) -> None:
        """Run ``sql`` (if any) and commit, in one round trip. SQLAlchemy's own commit
        that follows finds the transaction ended and sends nothing."""
        try:
            with self._dbapi.pipeline():
                if sql is not None:
                    self._cursor.execute(sql, params, prepare=True)
                self._dbapi.commit()
        except psycopg.Error as err:
            raise self._translated(sql or "COMMIT", err) from err

    def _translated(self, sql: str, err: psycopg.Error) -> DBAPIError:
        dialect = self._connection.dialect
        disconnect = dialect.is_disconnect(err, self._dbapi, self._cursor)
        if disconnect:
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
