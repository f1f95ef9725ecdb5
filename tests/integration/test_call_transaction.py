"""A SOAP call that changes something commits once, with its call record; if that COMMIT
fails, the caller gets a fault, nothing of the change is stored, the call is still
recorded, and the retry under the same MessageId does the change."""

from __future__ import annotations

import io
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from his_pacs_ws.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench import ENV, SUBMIT  # noqa: E402  (the QA scripts' requests)

ENVELOPE = ENV.format(header="", body=SUBMIT.replace("{p}", "P{a}"))

# Refuses the OK record of one MessageId: the held transaction's COMMIT fails, as it would
# if the database went away at that moment (PostgreSQL itself refuses, nothing is faked).
REFUSE_RECORD = ["""
CREATE OR REPLACE FUNCTION test_refuse_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF left(NEW.message_id, 7) = 'REFUSE-' AND NEW.outcome = 'OK' THEN
        RAISE EXCEPTION 'refused for the test';
    END IF;
    RETURN NEW;
END $$""", """
CREATE TRIGGER test_refuse_record BEFORE INSERT ON call_records
    FOR EACH ROW EXECUTE FUNCTION test_refuse_record()"""]


@pytest.fixture
def app(database_url, engine, tmp_path):
    from his_pacs_ws.soap.app import build_app

    application = build_app(Settings(auth=False, data_dir=tmp_path), database_url)
    with engine.begin() as conn:
        for statement in REFUSE_RECORD:
            conn.exec_driver_sql(statement)
    yield application
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS test_refuse_record ON call_records")
        conn.exec_driver_sql("DROP FUNCTION IF EXISTS test_refuse_record()")
    application.runtime.engine.dispose()


def post(app, body: bytes) -> tuple[str, bytes]:
    seen = []
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/ws/his", "CONTENT_TYPE": "text/xml; charset=utf-8",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "REMOTE_ADDR": "127.0.0.1",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}

    def start_response(status, headers, exc_info=None):
        seen.append((status, headers))

    answer = b"".join(app(environ, start_response))
    # Once: gunicorn adds the headers of a second call to the first's (two Content-Lengths,
    # and the client drops the answer).
    assert len(seen) == 1, seen
    [(status, headers)] = seen
    assert [int(v) for k, v in headers if k.lower() == "content-length"] == [len(answer)]
    return status, answer


def counts(engine, message_id: str, application_no: str) -> dict:
    with engine.connect() as conn:
        def one(sql):
            return conn.execute(text(sql), {"m": message_id, "a": application_no}).scalar()
        return {
            "applications": one("SELECT count(*) FROM applications WHERE application_no = :a"),
            "claims": one("SELECT count(*) FROM processed_messages WHERE message_id = :m"),
            "records": one("SELECT string_agg(outcome || ':' || coalesce(fault_code, ''), ',' ORDER BY id) "
                           "FROM call_records WHERE message_id = :m"),
        }


def test_an_ordinary_change_commits_once_with_its_record(app, engine):
    message_id, no = f"M-{uuid.uuid4().hex[:12]}", f"A{uuid.uuid4().hex[:12]}"
    status, answer = post(app, ENVELOPE.format(m=message_id, a=no).encode())
    assert status.startswith("200") and b"SubmitApplicationResult" in answer
    assert counts(engine, message_id, no) == {"applications": 1, "claims": 1, "records": "OK:"}


def test_a_failed_commit_answers_a_fault_and_stores_nothing_but_the_record(app, engine):
    message_id, no = f"REFUSE-{uuid.uuid4().hex[:12]}", f"A{uuid.uuid4().hex[:12]}"
    status, answer = post(app, ENVELOPE.format(m=message_id, a=no).encode())
    assert status.startswith("500") and b"InternalError" in answer
    assert b"refused for the test" not in answer  # the database's text stays in the server
    assert counts(engine, message_id, no) == {"applications": 0, "claims": 0, "records": "FAULT:InternalError"}

    with engine.begin() as conn:  # the database takes records again: the retry does the change
        conn.exec_driver_sql("DROP TRIGGER test_refuse_record ON call_records")
    status, answer = post(app, ENVELOPE.format(m=message_id, a=no).encode())
    assert status.startswith("200") and b"SubmitApplicationResult" in answer
    assert counts(engine, message_id, no) == {"applications": 1, "claims": 1,
                                              "records": "FAULT:InternalError,OK:"}


def test_a_database_restart_costs_one_call_not_one_per_pooled_connection(database_url, engine):
    """The first call on a connection the server dropped fails as Unavailable, and with it
    the whole pool is known stale: the retry gets a fresh connection (statements below
    SQLAlchemy invalidate the pool as SQLAlchemy does)."""
    from his_pacs_ws.db.engine import make_engine, session_factory
    from his_pacs_ws.domain.errors import Unavailable
    from tests.integration.conftest import Hospital

    mine = make_engine(database_url, pool_size=3)
    connections = [mine.connect() for _ in range(3)]
    pids = [c.execute(text("SELECT pg_backend_pid()")).scalar() for c in connections]
    for connection in connections:
        connection.close()  # back in the pool
    with engine.connect() as admin:  # as a restart would: the server ends all three
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                      {"pids": pids})
    hospital = Hospital(session_factory(mine), Settings())
    outcomes = []
    for _ in range(4):
        try:
            hospital.submit()
            outcomes.append("ok")
        except Unavailable:
            outcomes.append("Unavailable")
    mine.dispose()
    assert outcomes == ["Unavailable", "ok", "ok", "ok"]


def test_a_fault_after_the_change_on_a_dead_connection_is_answered_and_recorded(
        app, engine, tmp_path, monkeypatch):
    """The held connection dies while the answer is being built, and the answer cannot be
    built: the caller still gets a fault envelope, and the call is recorded (spooled,
    since its connection is gone) with nothing of the change stored."""
    import time

    from his_pacs_ws.db.engine import UnitOfWork
    from his_pacs_ws.soap import services as soap_services

    held = []
    hand_over = UnitOfWork.hand_over
    monkeypatch.setattr(UnitOfWork, "hand_over", lambda self: (held.append(self), hand_over(self)))

    def dying_build(*args):  # the answer's writer
        pid = held[-1].session.connection().connection.driver_connection.info.backend_pid
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        time.sleep(0.3)
        raise ValueError("the answer cannot be built")

    monkeypatch.setattr(soap_services, "response_envelope", dying_build)
    message_id, no = f"M-{uuid.uuid4().hex[:12]}", f"A{uuid.uuid4().hex[:12]}"
    status, answer = post(app, ENVELOPE.format(m=message_id, a=no).encode())
    assert status.startswith("500") and b"Server.InternalError" in answer
    state = counts(engine, message_id, no)
    spooled = list((tmp_path / "spool").glob("calls-*.jsonl")) if (tmp_path / "spool").exists() else []
    assert state["applications"] == 0 and state["claims"] == 0
    assert state["records"] == "FAULT:InternalError" or spooled, (state, spooled)


def test_a_commit_whose_acknowledgement_is_lost_is_answered_as_what_it_did(app, engine, monkeypatch):
    """The COMMIT reached PostgreSQL and only its answer was lost (the connection dropped at
    that moment): the change and its record are stored, so the caller gets the real answer,
    not a fault, and the call has one record."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    from his_pacs_ws.services.context import Context

    finish_call = Context.finish_call

    def acknowledgement_lost(self, uow, values):
        finish_call(self, uow, values)  # committed
        raise OperationalError("COMMIT", None, psycopg.OperationalError("server closed the connection"))

    monkeypatch.setattr(Context, "finish_call", acknowledgement_lost)
    message_id, no = f"M-{uuid.uuid4().hex[:12]}", f"A{uuid.uuid4().hex[:12]}"
    status, answer = post(app, ENVELOPE.format(m=message_id, a=no).encode())
    assert status.startswith("200") and b"SubmitApplicationResult" in answer
    assert counts(engine, message_id, no) == {"applications": 1, "claims": 1, "records": "OK:"}


@pytest.mark.parametrize("record_path", ["database", "spool"])
def test_a_commit_that_may_have_gone_through_leaves_one_record_of_what_was_answered(
        app, engine, monkeypatch, record_path):
    """The COMMIT went through, its acknowledgement was lost, and the database cannot say so
    at that moment (it is restarting). The caller is answered Unavailable and retries. The
    call keeps one record, of the answer it got, whether that record is stored at once or
    waits in the spool: not the committed OK record and a fault record beside it."""
    from sqlalchemy.exc import OperationalError

    from his_pacs_ws.domain.errors import Unavailable
    from his_pacs_ws.services import context as context_module
    from his_pacs_ws.services.context import Context

    finish_call, record_call = Context.finish_call, context_module.record_call

    def acknowledgement_lost(self, uow, values):
        finish_call(self, uow, values)  # committed
        raise Unavailable("the database is unavailable; retry with the same MessageId")

    def cannot_tell(engine, values):
        raise OperationalError("SELECT", None, Exception("the database system is starting up"))

    spooled_once = []

    def spooled_first(engine, values):
        if not spooled_once:
            spooled_once.append(values)
            raise OperationalError("INSERT", None, Exception("the database system is starting up"))
        record_call(engine, values)

    monkeypatch.setattr(Context, "finish_call", acknowledgement_lost)
    monkeypatch.setattr(context_module, "call_recorded", cannot_tell)
    if record_path == "spool":
        monkeypatch.setattr(context_module, "record_call", spooled_first)
    message_id, no = f"M-{uuid.uuid4().hex[:12]}", f"A{uuid.uuid4().hex[:12]}"
    status, answer = post(app, ENVELOPE.format(m=message_id, a=no).encode())
    assert status.startswith("500") and b"Server.Unavailable" in answer
    if record_path == "spool":
        assert spooled_once and app.runtime.spool.spooled == 1
        import time
        deadline = time.monotonic() + 10  # the failed INSERT opened the breaker; the watchdog closes it
        while app.runtime.breaker.open and time.monotonic() < deadline:
            time.sleep(0.05)

    monkeypatch.setattr(Context, "finish_call", finish_call)  # the database is back
    status, answer = post(app, ENVELOPE.format(m=message_id, a=no).encode())
    assert status.startswith("200") and b"SubmitApplicationResult" in answer
    if record_path == "spool":
        assert app.runtime.spool.replayed == 1
    assert counts(engine, message_id, no) == {"applications": 1, "claims": 1,
                                              "records": "FAULT:Unavailable,OK:"}
    with engine.connect() as conn:
        replayed, bodies = conn.execute(text(
            "SELECT array_agg(replayed ORDER BY id), array_agg(position('Unavailable' in "
            "convert_from(response_body, 'UTF8')) > 0 ORDER BY id) FROM call_records WHERE message_id = :m"),
            {"m": message_id}).one()
    assert replayed == [False, True] and bodies == [True, False]


def test_a_replacing_record_overwrites_only_its_own_call_and_keeps_dropped_bodies(engine):
    """The replacement matches its call exactly (time, service, caller, operation, MessageId),
    never another caller's record that shares the time and MessageId; a body the spool
    dropped (it was full) keeps the committed record's."""
    from datetime import datetime, timezone
    from decimal import Decimal

    from his_pacs_ws.db.repositories import record_call, replace_call_record

    at, message_id = datetime.now(timezone.utc), f"M-{uuid.uuid4().hex[:12]}"
    base = {"at": at, "service": "HIS", "operation": "ConfirmPayment", "message_id": message_id,
            "application_no": None, "patient_id": None, "outcome": "OK", "fault_code": None,
            "duration_ms": Decimal("3.10"), "replayed": False, "remote_addr": "127.0.0.1",
            "request_body": b"<request/>", "response_body": b"<ok/>"}
    record_call(engine, {**base, "caller": "his-a"})
    record_call(engine, {**base, "caller": "his-b"})
    with engine.begin() as conn:
        replace_call_record(conn, {**base, "caller": "his-a", "outcome": "FAULT", "fault_code": "Unavailable",
                                   "duration_ms": Decimal("9.90"), "request_body": None, "response_body": None})
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT caller, outcome, coalesce(fault_code, ''), duration_ms, request_body, response_body "
            "FROM call_records WHERE message_id = :m ORDER BY caller"), {"m": message_id}).all()
    assert [tuple(r) for r in rows] == [
        ("his-a", "FAULT", "Unavailable", Decimal("9.90"), b"<request/>", b"<ok/>"),
        ("his-b", "OK", "", Decimal("3.10"), b"<request/>", b"<ok/>"),
    ]
