"""Push mode's rules: who receives what, how long a retry waits, what an answer means."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from his_pacs_ws.domain.access import Role
from his_pacs_ws.domain.notifications import Notification, Outcome, RetryPolicy, parse_events, receives

WSDL = __import__("pathlib").Path(__file__).resolve().parents[2] / "wsdl"


def test_each_side_receives_its_own_notifications_only():
    assert Notification.APPLICATION_RELEASED.receiver_role is Role.PACS
    assert Notification.CRITICAL_VALUE_RAISED.receiver_role is Role.HIS
    common = dict(events=None, departments=None, department_code="CT", origin="his1")
    assert receives(Notification.APPLICATION_RELEASED, role=Role.PACS, receiver="pacs1", **common)
    assert not receives(Notification.APPLICATION_RELEASED, role=Role.HIS, receiver="his2", **common)


def test_a_system_is_not_told_of_its_own_call():
    assert not receives(Notification.APPLICATION_STATUS_CHANGED, role=Role.HIS, events=None, departments=None,
                        department_code="CT", receiver="his1", origin="his1")


def test_a_pacs_hears_of_its_departments_only():
    kwargs = dict(role=Role.PACS, events=None, departments=frozenset({"CT"}), receiver="pacs1", origin="his1")
    assert receives(Notification.APPLICATION_RELEASED, department_code="CT", **kwargs)
    assert not receives(Notification.APPLICATION_RELEASED, department_code="MR", **kwargs)


def test_events_filter_what_is_received():
    kwargs = dict(role=Role.HIS, departments=None, department_code="CT", receiver="his2", origin="pacs1")
    assert receives(Notification.REPORT_PUBLISHED, events=["ReportPublished"], **kwargs)
    assert not receives(Notification.CHARGES_POSTED, events=["ReportPublished"], **kwargs)


def test_events_are_checked_against_the_role():
    assert parse_events("ReportPublished, CriticalValueRaised", Role.HIS) == ["CriticalValueRaised", "ReportPublished"]
    assert parse_events(None, Role.PACS) is None
    with pytest.raises(ValueError, match="ApplicationReleased"):
        parse_events("ApplicationReleased", Role.HIS)


def test_backoff_grows_to_its_cap_with_jitter():
    policy = RetryPolicy(base_seconds=1, cap_seconds=60, critical_cap_seconds=5)
    rng = random.Random(7)
    delays = [policy.delay(n, critical=False, rng=rng) for n in range(1, 12)]
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 2 <= delays[2] <= 4
    assert all(30 <= d <= 60 for d in delays[7:])
    assert max(policy.delay(n, critical=True, rng=rng) for n in range(1, 40)) <= 5
    assert len({round(d, 6) for d in delays[7:]}) > 1  # jitter: retries of many receivers spread out


def test_what_is_retried():
    assert not Outcome.CLIENT_FAULT.retryable and not Outcome.DELIVERED.retryable
    assert Outcome.SERVER_FAULT.retryable and not Outcome.SERVER_FAULT.receiver_down
    assert Outcome.TIMEOUT.receiver_down and Outcome.CONNECTION_ERROR.receiver_down


def _schema(name: str) -> etree.XMLSchema:
    xs = "http://www.w3.org/2001/XMLSchema"
    found = etree.parse(str(WSDL / name)).find(f".//{{{xs}}}schema")
    # stand-alone: the WSDL's namespace prefixes (tns:, used in type="...") declared on it
    schema = etree.Element(f"{{{xs}}}schema", dict(found.attrib), nsmap={**found.nsmap, "tns": "urn:his-pacs-ws:v1"})
    schema.extend(found)
    return etree.XMLSchema(schema)


SAMPLES = {
    Notification.APPLICATION_STATUS_CHANGED: {
        "application_no": "A1", "status": "REGISTERED", "his_status": "执行中", "event": "REGISTERED",
        "locked": True, "source": "PACS", "operator": {"code": "R1", "name": "登记员"}, "accession_no": "ACC1"},
    Notification.CHARGES_POSTED: {
        "application_no": "A1", "patient_id": "P1", "total_charged": "150.00", "total_refunded": "0.00",
        "charges": [{"charge_id": "7", "application_no": "A1", "item_code": "CT001", "item_name": "头颅CT",
                     "quantity": "1.000", "unit_price": "150.00", "amount": "150.00", "refunded_quantity": "0.000",
                     "refunded_amount": "0.00", "trigger": "PACS_REGISTER",
                     "charged_at": "2026-11-26T01:00:00+00:00"}]},
    Notification.CRITICAL_VALUE_OVERDUE: {"critical_value": {
        "critical_value_no": "CV1", "application_no": "A1", "patient_id": "P1", "patient_name": "小明",
        "department_code": "NK", "finding": "气胸", "status": "RAISED", "reported_by": {"code": "R", "name": "赵"},
        "reported_at": "2026-11-26T01:00:00+00:00", "ack_deadline": "2026-11-26T01:10:00+00:00",
        "read_back_confirmed": False, "overdue": True}},
}


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_notifications_are_valid_by_the_callback_wsdl(kind):
    from his_pacs_ws.soap.callbacks import request_body

    at = datetime(2026, 11, 26, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    plain = {**SAMPLES[kind], "message_id": "HPW-1", "sequence": 1, "occurred_at": at}
    envelope = etree.fromstring(request_body(kind, plain, ZoneInfo("Asia/Shanghai"), None))
    wrapper = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
    schema = _schema("his-callback.wsdl")
    assert schema.validate(wrapper), schema.error_log


def test_a_client_fault_is_a_refusal_and_a_server_fault_a_failure():
    from his_pacs_ws.soap.callbacks import read_answer

    def fault(code):
        return (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
                f'<faultcode>s:{code}</faultcode><faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>').encode()

    kind = Notification.REPORT_PUBLISHED
    assert read_answer(kind, 500, fault("Client.Duplicate"))[0] is Outcome.CLIENT_FAULT
    assert read_answer(kind, 500, fault("Server"))[0] is Outcome.SERVER_FAULT
    assert read_answer(kind, 502, b"<html>bad gateway</html>")[0] is Outcome.HTTP_ERROR
    assert read_answer(kind, 200, b"ok")[0] is Outcome.HTTP_ERROR
    accepted = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="urn:his-pacs-ws:v1">'
                b'<s:Body><t:ReportPublishedResponse><t:ReportPublishedResult><t:Accepted>true</t:Accepted>'
                b'</t:ReportPublishedResult></t:ReportPublishedResponse></s:Body></s:Envelope>')
    assert read_answer(kind, 200, accepted)[0] is Outcome.DELIVERED
    assert read_answer(kind, 200, accepted.replace(b">true<", b">false<"))[0] is Outcome.CLIENT_FAULT
