"""A database that cannot be reached is a retryable Server.Unavailable, nothing else."""

import pytest

from his_pacs_ws.config import Settings
from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.db.engine import UnitOfWork, make_engine, session_factory
from his_pacs_ws.domain.errors import Unavailable
from his_pacs_ws.services import applications


def test_unreachable_database_is_unavailable_and_retryable():
    engine = make_engine("postgresql://nobody@127.0.0.1:1/nothing")
    uow = UnitOfWork(session_factory(engine))
    with pytest.raises(Unavailable) as err:
        applications.confirm_payment(uow, Settings(), Caller("HIS", Role.HIS), {
            "message_id": "M1", "application_no": "A1", "amount": 1, "paid_at": None})
    assert err.value.retryable and err.value.side == "Server"
    engine.dispose()


def test_health_says_when_the_database_is_gone():
    from his_pacs_ws.soap.app import build_app

    app = build_app(Settings(auth=False), "postgresql://nobody@127.0.0.1:1/nothing")
    statuses = []
    body = app({"PATH_INFO": "/health", "REQUEST_METHOD": "GET"}, lambda status, headers: statuses.append(status))
    assert statuses == ["503 Service Unavailable"] and b"database" in b"".join(body)
    app.runtime.engine.dispose()
