"""Leaving a unit of work when the database has gone: the retryable Unavailable."""

from __future__ import annotations


def test_a_connection_lost_during_the_rollback_is_unavailable():
    """The database died while a unit of work was being left: the caller gets the retryable
    Unavailable, never an internal error (seen once in the restart experiment)."""
    import psycopg
    import pytest

    from his_pacs_ws.db.engine import UnitOfWork
    from his_pacs_ws.domain.errors import Unavailable

    class DyingSession:
        def rollback(self):
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        def close(self):
            pass

    uow = UnitOfWork.__new__(UnitOfWork)
    uow.session, uow._breaker = DyingSession(), None
    with pytest.raises(Unavailable):
        uow.__exit__(None, None, None)
    with pytest.raises(Unavailable):  # also when a business error was on its way out
        uow.__exit__(ValueError, ValueError("x"), None)
