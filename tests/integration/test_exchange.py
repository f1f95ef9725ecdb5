"""View mode: a partner's login role reads the exchange views of its departments and nothing
else, and what a PACS writes into exchange.pacs_inbox goes through the SOAP operations' rules.
The partner's side connects as the granted role, as a vendor's JDBC/ODBC tool would."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import psycopg
import pytest
from psycopg import errors as pg
from sqlalchemy.engine import make_url

from his_pacs_ws.config import Settings
from his_pacs_ws.services import exchange, inbox, worklist
from his_pacs_ws.services.context import Context
from his_pacs_ws.services.records import search_calls, show_call
from his_pacs_ws.services.systems import SystemCommandError
from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.domain.errors import InvalidTransition
from tests.integration.conftest import CLERK, T0, unique

PASSWORD = "view-partner-password-1"


@pytest.fixture
def context(engine):
    return Context(Settings(), engine)


@pytest.fixture
def partners(context, database_url):
    """Grant view partners for a test; every one is revoked afterwards (roles outlive databases)."""
    granted = []

    def grant(role="PACS", departments=None, name=None):
        name = name or f"view_{uuid.uuid4().hex[:10]}"
        exchange.grant(context.uow(), name, role, PASSWORD, departments)
        granted.append(name)
        return Partner(name, database_url)

    yield grant
    for name in granted:
        try:
            exchange.revoke(context.uow(), name)
        except SystemCommandError:  # the test revoked it itself
            pass


class Partner:
    """The partner's own connection: its login role, its password."""

    def __init__(self, name: str, database_url: str):
        self.name = name
        url = make_url(database_url).set(drivername="postgresql", username=name, password=PASSWORD)
        self.conninfo = url.render_as_string(hide_password=False)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.conninfo, autocommit=True)

    def query(self, sql: str, params=()) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def write(self, **columns) -> int:
        names = ", ".join(columns)
        marks = ", ".join(["%s"] * len(columns))
        with self.connect() as conn:
            return conn.execute(f"INSERT INTO exchange.pacs_inbox ({names}) VALUES ({marks}) RETURNING id",
                                tuple(columns.values())).fetchone()[0]

    def row(self, pk: int) -> dict:
        with self.connect() as conn:
            cursor = conn.execute("SELECT * FROM exchange.pacs_inbox WHERE id = %s", (pk,))
            names = [c.name for c in cursor.description]
            return dict(zip(names, cursor.fetchone()))


def registration(application_no: str, message_id: str | None = None, **overrides) -> dict:
    columns = {"message_id": message_id or unique("M"), "operation": "ReportStatus",
               "application_no": application_no, "status": "REGISTERED",
               "occurred_at": T0 + timedelta(minutes=20), "operator_code": CLERK["code"],
               "operator_name": CLERK["name"], "accession_no": unique("ACC")}
    columns.update(overrides)
    return columns


# --- what a partner can read ---------------------------------------------------------------


def test_partner_reads_its_departments_worklist_and_nothing_else(hospital, partners):
    ct = hospital.released(executing="CT")
    mr = hospital.released(executing="MR")
    unpaid = hospital.submit(executing="CT")
    partner = partners("PACS", ["CT"])

    seen = {no for (no,) in partner.query("SELECT application_no FROM exchange.worklist")}
    assert ct in seen
    assert mr not in seen  # another department's row is invisible
    assert unpaid not in seen  # not paid: the registration clerk must not find the patient
    (row,) = partner.query("SELECT patient_name, his_status, item_codes, total_amount FROM exchange.worklist "
                           "WHERE application_no = %s", (ct,))
    assert row[0] == "小明" and row[1] == "待执行" and row[2] == "CT001" and str(row[3]) == "150.00"
    items = partner.query("SELECT line_no, item_code, item_name FROM exchange.worklist_items "
                          "WHERE application_no = %s", (ct,))
    assert items == [(1, "CT001", "头颅CT平扫")]
    assert partner.query("SELECT 1 FROM exchange.application_status WHERE application_no = %s", (mr,)) == []

    for forbidden in ("SELECT * FROM applications", "SELECT * FROM call_records", "SELECT * FROM systems",
                      "SELECT * FROM exchange_partners", "SELECT * FROM public.patients"):
        with pytest.raises(pg.InsufficientPrivilege):
            partner.query(forbidden)
    with pytest.raises(pg.InsufficientPrivilege):
        partner.query("UPDATE applications SET status = 'CANCELLED' WHERE application_no = %s", (ct,))
    with pytest.raises((pg.InsufficientPrivilege, pg.ObjectNotInPrerequisiteState, pg.FeatureNotSupported)):
        partner.query("DELETE FROM exchange.worklist")
    with pytest.raises(pg.InsufficientPrivilege):  # the processing columns are his-pacs-ws's to write
        partner.query("UPDATE exchange.pacs_inbox SET state = 'PROCESSED'")
    with pytest.raises(pg.InsufficientPrivilege):
        partner.query("INSERT INTO exchange.pacs_inbox (message_id, operation, state) "
                      "VALUES ('M1', 'ReportStatus', 'PROCESSED')")


def test_a_partner_serving_every_department_sees_them_all_and_a_his_sees_unreleased_ones(hospital, partners):
    ct, mr = hospital.released(executing="CT"), hospital.released(executing="MR")
    unpaid = hospital.submit(executing="CT")
    pacs, his = partners("PACS"), partners("HIS")
    assert {ct, mr} <= {no for (no,) in pacs.query("SELECT application_no FROM exchange.worklist")}
    status = dict(his.query("SELECT application_no, his_status FROM exchange.application_status "
                            "WHERE application_no = ANY(%s)", ([ct, mr, unpaid],)))
    assert status == {ct: "待执行", mr: "待执行", unpaid: "待收费"}
    with pytest.raises(pg.InsufficientPrivilege):  # the inbox is the PACS's
        his.write(**registration(ct))


def test_reports_critical_values_and_charges_read_like_the_soap_answers(hospital, partners):
    no = hospital.submit(patient_type="INPATIENT")
    sent = hospital.send(no)
    hospital.pacs(no, "REGISTERED")
    hospital.push(no, "FINAL", image_urls=["http://pacs/1.jpg", "http://pacs/2.jpg"])
    number = hospital.raise_cv(no)["critical_value"]["critical_value_no"]
    charge_id = sent["charges"][0]["charge_id"]
    hospital.refund(no, [(charge_id, "1")])
    partner = partners("PACS")

    (report,) = partner.query("SELECT result_status, version, image_urls, verifying_doctor_name "
                              "FROM exchange.reports WHERE application_no = %s", (no,))
    assert report == ("FINAL", 1, "http://pacs/1.jpg\nhttp://pacs/2.jpg", "钱主任")
    hospital.push(no, "CORRECTED", minutes=90, impression="考虑脑梗死（更正）")
    assert partner.query("SELECT result_status, version, impression FROM exchange.reports "
                         "WHERE application_no = %s", (no,)) == [("CORRECTED", 2, "考虑脑梗死（更正）")]
    (cv,) = partner.query("SELECT status, reviewed_by_name FROM exchange.critical_values "
                          "WHERE critical_value_no = %s", (number,))
    assert cv == ("RAISED", "钱主任")
    (charge,) = partner.query("SELECT amount, refunded_quantity, refunded_amount, trigger FROM exchange.charges "
                              "WHERE charge_id = %s", (charge_id,))
    assert [str(v) for v in charge] == ["150.00", "1.000", "150.00", "NURSE_SEND"]
    assert partner.query("SELECT source FROM exchange.refunds WHERE charge_id = %s", (charge_id,)) == [("PACS",)]


# --- change numbers --------------------------------------------------------------------------


def test_everything_since_n_brings_each_change_once(hospital, partners):
    partner = partners("PACS")
    no = hospital.released()
    (before,) = partner.query("SELECT change_no FROM exchange.application_status WHERE application_no = %s", (no,))[0]
    assert partner.query("SELECT application_no FROM exchange.application_status WHERE change_no > %s "
                         "AND application_no = %s", (before, no)) == []
    hospital.pacs(no, "REGISTERED")
    changed = partner.query("SELECT status, change_no FROM exchange.application_status WHERE change_no > %s "
                            "AND application_no = %s", (before, no))
    assert [status for status, _ in changed] == ["REGISTERED"] and changed[0][1] > before


def test_a_change_committed_later_with_a_smaller_number_is_not_missed(hospital, partners, engine):
    """Transaction numbers are taken when a transaction starts writing, not when it commits. A
    slow writer that began first and commits last must still reach a reader polling "since N"."""
    partner = partners("PACS")
    slow_app, quick_app = hospital.released(), hospital.released()
    (start,) = partner.query("SELECT max(change_no) FROM exchange.application_status")[0]

    slow = engine.raw_connection()  # his-pacs-ws's own connection: an application change in flight
    try:
        cursor = slow.cursor()
        cursor.execute("UPDATE applications SET updated_at = now() WHERE application_no = %s", (slow_app,))
        hospital.pacs(quick_app, "REGISTERED")  # a later transaction, committed first

        first_poll = partner.query("SELECT application_no, change_no FROM exchange.application_status "
                                   "WHERE change_no > %s ORDER BY change_no", (start,))
        # the quick change waits until the slow one ends: showing it now would let the reader
        # move N past a number the slow transaction is about to commit
        assert quick_app not in {no for no, _ in first_poll}
        seen = max([start] + [n for _, n in first_poll])
        slow.commit()
    finally:
        slow.close()

    second_poll = dict(partner.query("SELECT application_no, change_no FROM exchange.application_status "
                                     "WHERE change_no > %s", (seen,)))
    assert {slow_app, quick_app} <= set(second_poll)
    assert second_poll[slow_app] < second_poll[quick_app]  # committed later, numbered lower, not missed


# --- the inbox -------------------------------------------------------------------------------


def test_an_inbox_row_registers_the_exam_and_a_second_copy_is_a_no_op(hospital, partners, context):
    partner = partners("PACS", ["CT"])
    no = hospital.released()
    columns = registration(no)
    first = partner.write(**columns)
    assert partner.row(first)["state"] == "PENDING"

    assert inbox.drain(context) == 1
    row = partner.row(first)
    assert (row["state"], row["fault_code"], row["replayed"], row["status_after"]) == \
        ("PROCESSED", None, False, "REGISTERED")
    detail = hospital.get(no)
    assert detail["application"]["status"] == "REGISTERED"
    assert detail["application"]["accession_no"] == columns["accession_no"]

    second = partner.write(**columns)  # the vendor's tool wrote it twice
    assert inbox.drain(context) == 1
    row = partner.row(second)
    assert (row["state"], row["replayed"]) == ("PROCESSED", True)
    events = [e["event"] for e in hospital.get(no)["timeline"]]
    assert events.count("REGISTERED") == 1

    reused = partner.write(**{**columns, "room": "CT2"})  # same MessageId, other content
    inbox.drain(context)
    assert partner.row(reused)["fault_code"] == "MessageIdReused"

    calls = search_calls(context.uow(), message_id=columns["message_id"])
    assert [(c["service"], c["caller"], c["operation"], c["application_no"]) for c in calls] == \
        [("PACS_INBOX", partner.name, "ReportStatus", no)] * 3
    assert sorted(c["replayed"] for c in calls) == [False, False, True]
    recorded = show_call(context.uow(), row["call_record_id"])
    assert recorded["remote_addr"] == f"pacs_inbox:{second}"
    assert columns["accession_no"].encode() in recorded["request_body"]


def test_a_row_against_a_cancelled_application_is_refused_as_the_soap_call_would_be(hospital, partners, context):
    partner = partners("PACS")
    no = hospital.released()
    hospital.cancel(no)
    columns = registration(no)
    with pytest.raises(InvalidTransition) as soap:  # what ReportStatus answers the same request
        worklist.report_status(hospital.uow(), hospital.settings, Caller("soap-twin", Role.PACS), {
            "message_id": unique("M"), "application_no": no, "status": "REGISTERED",
            "occurred_at": columns["occurred_at"], "operator": CLERK, "accession_no": columns["accession_no"]})

    pk = partner.write(**columns)
    inbox.drain(context)
    row = partner.row(pk)
    assert (row["state"], row["fault_code"], row["fault_message"]) == ("REFUSED", "InvalidTransition",
                                                                       soap.value.message)
    assert hospital.status(no) == "CANCELLED"
    (call,) = search_calls(context.uow(), message_id=columns["message_id"])
    assert (call["outcome"], call["fault_code"]) == ("FAULT", "InvalidTransition")


def test_a_row_for_another_department_or_missing_a_column_changes_nothing(hospital, partners, context):
    partner = partners("PACS", ["CT"])
    mr = hospital.released(executing="MR")
    ct = hospital.released(executing="CT")
    other = partner.write(**registration(mr))
    missing = partner.write(**registration(ct, operator_code=None))
    unknown = partner.write(**registration(ct, status="ARRIVED"))
    no_accession = partner.write(**registration(ct, accession_no=""))
    inbox.drain(context)

    assert partner.row(other)["fault_code"] == "AccessDenied"
    assert (partner.row(missing)["fault_code"], partner.row(missing)["fault_message"]) == \
        ("SchemaValidationError", "column operator_code is required for ReportStatus")
    assert partner.row(unknown)["fault_code"] == "SchemaValidationError"
    assert (partner.row(no_accession)["fault_code"], partner.row(no_accession)["fault_message"]) == \
        ("SchemaValidationError", "AccessionNo is required with REGISTERED")
    assert hospital.status(mr) == "RELEASED" and hospital.status(ct) == "RELEASED"


def test_reports_and_critical_values_come_through_the_inbox(hospital, partners, context):
    partner = partners("PACS")
    no = hospital.released()
    report = partner.write(
        message_id=unique("M"), operation="PushReport", application_no=no, report_no=f"R-{no}",
        result_status="FINAL", reporting_doctor_code="RAD01", reporting_doctor_name="赵医生",
        reported_at=T0 + timedelta(minutes=60), verifying_doctor_code="RAD09", verifying_doctor_name="钱主任",
        verified_at=T0 + timedelta(minutes=65), findings="左侧额叶见片状低密度影", impression="考虑脑梗死", positive=True,
        image_urls="http://pacs/1.jpg\r\nhttp://pacs/2.jpg\n")
    number = unique("CV")
    raised = partner.write(
        message_id=unique("M"), operation="RaiseCriticalValue", critical_value_no=number, application_no=no,
        finding="大面积脑梗死", reporting_doctor_code="RAD01", reporting_doctor_name="赵医生",
        reported_at=T0 + timedelta(minutes=61), reviewed_by_code="RAD09", reviewed_by_name="钱主任")
    revoked = partner.write(message_id=unique("M"), operation="RevokeCriticalValue", critical_value_no=number,
                            reason="误报", operator_code="RAD09", operator_name="钱主任")
    assert inbox.drain(context) == 3

    assert [partner.row(pk)["status_after"] for pk in (report, raised, revoked)] == ["VERIFIED", "RAISED", "REVOKED"]
    (final,) = hospital.reports(application_no=no)["reports"]
    assert final["image_urls"] == ["http://pacs/1.jpg", "http://pacs/2.jpg"]
    assert final["verifying_doctor"] == {"code": "RAD09", "name": "钱主任"}
    (cv,) = hospital.critical_values(application_no=no)["critical_values"]
    assert (cv["status"], cv["reviewed_by"]["name"]) == ("REVOKED", "钱主任")
    (call,) = search_calls(context.uow(), operation="RevokeCriticalValue", caller=partner.name)
    assert call["application_no"] == no  # named by the critical value's application, like SOAP


def test_revoking_a_partner_drops_its_login_and_keeps_its_rows(hospital, partners, context):
    partner = partners("PACS")
    pk = partner.write(**registration(hospital.released()))
    ended_sessions = exchange.revoke(context.uow(), partner.name)
    assert ended_sessions == 0
    with pytest.raises(psycopg.OperationalError):
        partner.connect()
    inbox.drain(context)  # its row is still answered: the partner is no longer granted
    with context.uow() as uow:
        row = uow.exchange.inbox_row(pk)
        assert (row.state, row.fault_code) == ("REFUSED", "AccessDenied")
    assert partner.name not in {p["name"] for p in exchange.list_partners(context.uow())}


def test_grant_refuses_what_postgresql_would_misread(context, partners, engine):
    for name in ("Pacs", "postgres", "pg_monitor", "x", "pacs-ct"):
        with pytest.raises(SystemCommandError):
            exchange.grant(context.uow(), name, "PACS", PASSWORD, None)
    with pytest.raises(SystemCommandError):
        exchange.grant(context.uow(), "view_short_pw", "PACS", "short", None)
    with pytest.raises(SystemCommandError):
        exchange.grant(context.uow(), "view_his_dept", "HIS", PASSWORD, ["CT"])
    partner = partners("PACS", ["CT"])
    assert exchange.grant(context.uow(), partner.name, "PACS", PASSWORD + "2", ["CT", "MR"]) == "updated"
    (listed,) = [p for p in exchange.list_partners(context.uow()) if p["name"] == partner.name]
    assert listed["departments"] == ["CT", "MR"] and listed["login"]

    with engine.begin() as conn:  # someone dropped the login by hand
        conn.exec_driver_sql(f"DROP OWNED BY {partner.name}; DROP ROLE {partner.name}")
    (listed,) = [p for p in exchange.list_partners(context.uow()) if p["name"] == partner.name]
    assert not listed["login"]
    assert exchange.grant(context.uow(), partner.name, "PACS", PASSWORD, ["CT"]) == "updated"
    assert partner.query("SELECT count(*) FROM exchange.worklist WHERE executing_department_code <> 'CT'") == [(0,)]


def test_processors_racing_over_the_inbox_answer_each_row_once(hospital, partners, context):
    partner = partners("PACS")
    rows = {partner.write(**registration(hospital.released())): None for _ in range(12)}
    done: list[int] = []
    threads = [threading.Thread(target=lambda: done.append(inbox.drain(context))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(done) == len(rows)  # no row taken twice, none left
    for pk in rows:
        row = partner.row(pk)
        assert (row["state"], row["replayed"]) == ("PROCESSED", False)
        assert len(search_calls(context.uow(), message_id=row["message_id"])) == 1


def test_a_row_whose_outcome_was_lost_is_answered_from_the_stored_reply(hospital, partners, context):
    """The use case committed, the processor died before marking the row: the next pass
    replays the stored answer instead of registering twice."""
    partner = partners("PACS")
    no = hospital.released()
    columns = registration(no)
    pk = partner.write(**columns)
    with context.uow() as uow:
        caller = exchange.caller_for(uow, partner.name)
    worklist.report_status(context.uow(), context.settings, caller, inbox.request_from(columns))

    inbox.drain(context)
    row = partner.row(pk)
    assert (row["state"], row["replayed"], row["status_after"]) == ("PROCESSED", True, "REGISTERED")
    assert [e["event"] for e in hospital.get(no)["timeline"]].count("REGISTERED") == 1


def test_on_a_server_the_owner_needs_only_createrole(database_url):
    """A hospital's own server: his-pacs-ws's user owns its database and has CREATEROLE, no more."""
    from sqlalchemy import create_engine, text

    from his_pacs_ws.db import migrate
    from his_pacs_ws.db.engine import make_engine

    suffix = uuid.uuid4().hex[:8]
    owner, database, name = f"hisws_{suffix}", f"his_pacs_owned_{suffix}", f"view_{suffix}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD 'owner-password-1'"))
        conn.execute(text(f"CREATE DATABASE {database} OWNER {owner}"))
    engine = make_engine(make_url(database_url).set(username=owner, password="owner-password-1",
                                                    database=database).render_as_string(hide_password=False))
    try:
        migrate.upgrade(engine)
        owned = Context(Settings(), engine)
        exchange.grant(owned.uow(), name, "PACS", PASSWORD, ["CT"])
        partner = Partner(name, engine.url.render_as_string(hide_password=False))
        assert partner.query("SELECT count(*) FROM exchange.worklist") == [(0,)]
        pk = partner.write(**registration("A-NONE"))
        inbox.drain(owned)
        assert partner.row(pk)["fault_code"] == "ApplicationNotFound"
        exchange.revoke(owned.uow(), name)
        with pytest.raises(psycopg.OperationalError):
            partner.connect()
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
            conn.execute(text(f"DROP ROLE IF EXISTS {name}"))
            conn.execute(text(f"DROP ROLE IF EXISTS {owner}"))
        admin.dispose()
