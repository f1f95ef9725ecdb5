"""Every operation's result has its wire type's fields: no key spyne would drop without a
word, none the wire type declares that the use case forgets, at every depth.

The operations run for real (a day of one hospital, every request with every optional field
filled, so that whatever the contract can carry is there to come back), and each result is
compared with its ``<Op>Result`` type. A replayed answer, stored as JSON without its empty
fields, may leave optional fields out but carries nothing the type does not declare.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Callable

import pytest

import his_pacs_ws.soap.compat  # noqa: F401  (spyne on Python 3.12+)
from spyne import ComplexModelBase
from spyne.model.complex import Array
from sqlalchemy import text

from his_pacs_ws.config import Settings
from his_pacs_ws.domain.access import Caller
from his_pacs_ws.domain.billing import ChargePoint
from his_pacs_ws.domain.notifications import Notification
from his_pacs_ws.services import applications, critical_values, emr, ledger, reports, worklist
from his_pacs_ws.services.messages import Replayed
from his_pacs_ws.soap.callbacks import REQUEST_TYPES
from his_pacs_ws.soap.convert import snake
from his_pacs_ws.soap.services import HisService, PacsService, ping
from tests.integration.conftest import (
    CHIEF,
    CLERK,
    DOCTOR,
    HIS,
    NURSE,
    PACS,
    RADIOLOGIST,
    T0,
    Hospital,
    item,
    unique,
)


def result_types() -> dict[str, type]:
    """Operation -> its result type, as the two services declare them."""
    types: dict[str, type] = {}
    for service in (HisService, PacsService):
        for name, method in service.public_methods.items():
            (field,) = method.out_message.get_flat_type_info(method.out_message).values()
            assert types.setdefault(name, field.__orig__ or field) is (field.__orig__ or field), name
    return types


def changing_operations() -> set[str]:
    """The operations whose request carries a MessageId (and whose answer is stored)."""
    return {name for service in (HisService, PacsService) for name, method in service.public_methods.items()
            for request in method.in_message.get_flat_type_info(method.in_message).values()
            if "MessageId" in request.get_flat_type_info(request)}


def _is_list(cls) -> bool:
    return issubclass(cls, Array) or bool(getattr(cls.Attributes, "_wrapper", False))


def shape_errors(cls, data, path: str, *, exact: bool, seen: set[str]) -> list[str]:
    """Where ``data`` differs from the wire type ``cls``: keys it lacks (when ``exact``) or
    has in excess, nested types and list entries included. ``seen``: the complex types met."""
    if data is None:
        return []
    if _is_list(cls):
        (member,) = cls.get_flat_type_info(cls).values()
        if not isinstance(data, list):
            return [f"{path}: a list, not {type(data).__name__}"]
        return [e for i, entry in enumerate(data) for e in shape_errors(member, entry, f"{path}[{i}]",
                                                                      exact=exact, seen=seen)]
    if not (isinstance(cls, type) and issubclass(cls, ComplexModelBase)):
        return [f"{path}: a {type(data).__name__} where {cls.get_type_name()} has fields"] \
            if isinstance(data, (dict, list)) else []
    if not isinstance(data, dict):
        return [f"{path}: {type(data).__name__}, not the fields of {cls.get_type_name()}"]
    cls = cls.__orig__ or cls  # a customized copy keeps the fields it had then (a package's lines)
    seen.add(cls.get_type_name())
    fields = {snake(name): (name, field) for name, field in cls.get_flat_type_info(cls).items()}
    errors = [f"{path}.{key}: not a field of {cls.get_type_name()}" for key in sorted(set(data) - set(fields))]
    missing = [n for key, (n, f) in fields.items() if key not in data and (exact or f.Attributes.min_occurs)]
    errors += [f"{path}: {cls.get_type_name()}.{name} is missing" for name in missing]
    for key in sorted(set(data) & set(fields)):
        name, field = fields[key]
        errors += shape_errors(field, data[key], f"{path}.{name}", exact=exact, seen=seen)
    return errors


def reachable(cls, found: set[str]) -> set[str]:
    """The complex types a result type can carry, itself included."""
    if _is_list(cls):
        (member,) = cls.get_flat_type_info(cls).values()
        return reachable(member, found)
    if isinstance(cls, type) and issubclass(cls, ComplexModelBase) and cls.get_type_name() not in found:
        found.add(cls.get_type_name())
        cls = cls.__orig__ or cls
        for field in cls.get_flat_type_info(cls).values():
            reachable(field, found)
    return found


PATIENT = {"name": "小明", "sex": "M", "birth_date": date(1980, 5, 1), "id_card_no": "110101198005010011",
           "phone": "13800000000"}


def full_visit(patient_type: str) -> dict:
    return {"visit_no": unique("V"), "patient_type": patient_type, "visit_at": T0 - timedelta(days=1),
            "inpatient_no": unique("IP"), "ward_code": "W3", "ward_name": "神经内科病区", "bed_no": "12",
            "department_code": "SJNK", "department_name": "神经内科", "diagnosis": "头痛待查"}


def full_submit(hospital: Hospital, patient_type: str, executing: str = "CT") -> dict:
    """A submission with every optional field, a package among its items."""
    package = item("PKG01", "头颅CT平扫+增强", price="0", components=[
        item("CT001", "头颅CT平扫", price="150.00"), item("CT002", "增强", price="200.00")])
    package.update(body_part="头颅")
    return hospital.submit_request(
        patient_type=patient_type, executing=executing,
        patient={"patient_id": unique("P"), **PATIENT}, visit=full_visit(patient_type),
        items=[item(), package], ordering_department_name="神经内科", executing_department_name="放射科",
        clinical_diagnosis="脑梗死？", clinical_history="头痛3天", exam_purpose="排除脑出血", priority="URGENT")


def full_report(application_no: str, accession_no: str, result_status: str, *, minutes: int = 60) -> dict:
    return {"message_id": unique("M"), "application_no": application_no, "report_no": f"R-{application_no}",
            "result_status": result_status, "accession_no": accession_no, "findings": "左侧额叶见片状低密度影",
            "impression": "考虑脑梗死", "positive": True, "reporting_doctor": RADIOLOGIST,
            "reported_at": T0 + timedelta(minutes=minutes), "verifying_doctor": CHIEF,
            "verified_at": T0 + timedelta(minutes=minutes + 5), "study_instance_uid": "1.2.840.1",
            "viewer_url": "https://pacs.example/view/1", "image_urls": ["https://pacs.example/img/1.jpg"],
            "pdf_url": "https://pacs.example/report/1.pdf"}


@dataclass(frozen=True)
class Call:
    operation: str
    use_case: Callable
    caller: Caller
    request: dict
    result: dict


def a_day(hospital: Hospital) -> list[Call]:
    """Every operation of both services at least once, with its fresh result."""
    uow, settings = hospital.uow, hospital.settings
    at = T0 + timedelta(minutes=5)
    out: list[Call] = []

    def run(operation: str, use_case, caller, request: dict) -> dict:
        result = use_case(uow(), settings, caller, request)
        out.append(Call(operation, use_case, caller, request, result))
        return result

    # An outpatient: submitted, paid, registered, examined, reported, with a critical value.
    submitted = full_submit(hospital, "OUTPATIENT")
    no = submitted["application_no"]
    run("SubmitApplication", applications.submit_application, HIS, submitted)
    run("ConfirmPayment", applications.confirm_payment, HIS, {
        "message_id": unique("M"), "application_no": no, "amount": Decimal("500.00"), "paid_at": at,
        "invoice_no": unique("INV")})
    run("QueryApplications", worklist.query_applications, PACS, {
        "application_no": no, "statuses": ["RELEASED"], "page_size": 1})
    accession = unique("ACC")
    run("ReportStatus", worklist.report_status, PACS, {
        "message_id": unique("M"), "application_no": no, "status": "REGISTERED",
        "occurred_at": T0 + timedelta(minutes=20), "operator": CLERK, "accession_no": accession,
        "room": "CT2", "note": "已登记"})
    hospital.pacs(no, "EXAMINED", minutes=30)
    run("PushReport", reports.push_report, PACS, full_report(no, accession, "FINAL"))
    run("QueryReports", reports.query_reports, HIS, {"application_no": no, "include_preliminary": True})
    run("GetApplication", applications.get_application, HIS, {"application_no": no})
    number = unique("CV")
    run("RaiseCriticalValue", critical_values.raise_critical_value, PACS, {
        "message_id": unique("M"), "critical_value_no": number, "application_no": no,
        "finding": "大面积脑梗死", "reported_by": RADIOLOGIST, "reported_at": T0 + timedelta(minutes=70),
        "report_no": f"R-{no}", "reviewed_by": CHIEF, "contact_phone": "8001"})
    run("AcknowledgeCriticalValue", critical_values.acknowledge, HIS, {
        "message_id": unique("M"), "critical_value_no": number, "received_by": NURSE,
        "received_at": T0 + timedelta(minutes=75), "read_back_confirmed": True})
    run("RecordCriticalValueHandling", critical_values.record_handling, HIS, {
        "message_id": unique("M"), "critical_value_no": number, "handled_by": DOCTOR,
        "handled_at": T0 + timedelta(minutes=90), "handling_opinion": "已请神经内科会诊"})
    run("QueryCriticalValues", critical_values.query_critical_values, HIS, {
        "application_no": no, "statuses": ["HANDLED"]})
    revoked = unique("CV")
    hospital.raise_cv(no, number=revoked, minutes=95)
    run("RevokeCriticalValue", critical_values.revoke, PACS, {
        "message_id": unique("M"), "critical_value_no": revoked, "reason": "误报", "operator": CHIEF})

    # A paid outpatient cancelled: its charge reversed.
    paid = full_submit(hospital, "OUTPATIENT")
    applications.submit_application(uow(), settings, HIS, paid)
    hospital.pay(paid["application_no"], amount="500.00")
    run("CancelApplication", applications.cancel_application, HIS, {
        "message_id": unique("M"), "application_no": paid["application_no"], "reason": "患者拒绝检查",
        "operator": DOCTOR, "cancelled_at": T0 + timedelta(minutes=10)})

    # An inpatient: sent (and charged), charged by PACS, partly refunded.
    inpatient = full_submit(hospital, "INPATIENT")
    ino = inpatient["application_no"]
    applications.submit_application(uow(), settings, HIS, inpatient)
    run("SendInpatientOrder", applications.send_inpatient_order, HIS, {
        "message_id": unique("M"), "application_no": ino, "nurse": NURSE, "sent_at": at})
    charged = run("Charge", ledger.charge, PACS, {
        "message_id": unique("M"), "charge_request_no": unique("C"), "application_no": ino,
        "items": [item("FILM", "胶片", quantity="2", price="20.00")], "operator": CLERK,
        "charged_at": T0 + timedelta(minutes=30)})
    run("Refund", ledger.refund, PACS, {
        "message_id": unique("M"), "refund_request_no": unique("R"), "application_no": ino,
        "lines": [{"charge_id": charged["charges"][0]["charge_id"], "quantity": Decimal("1")}],
        "reason": "废片", "operator": CLERK, "requested_at": T0 + timedelta(minutes=40)})
    run("QueryCharges", ledger.query_charges, HIS, {"application_no": ino})

    # The inpatient's EMR, published by HIS and read by PACS.
    patient_id, visit = inpatient["patient"]["patient_id"], inpatient["visit"]
    run("PublishEmr", emr.publish_emr, HIS, {
        "message_id": unique("M"), "patient_id": patient_id, "visit": visit,
        "documents": [{"document_id": unique("DOC"), "document_type": "入院记录", "title": "入院记录",
                       "content": "主诉：头痛3天", "author_name": "王医生", "recorded_at": T0, "version": 2}],
        "orders": [{"order_no": unique("O"), "order_type": "检查", "content": "头颅CT平扫",
                    "ordered_at": T0, "status": "已执行"}]})
    run("QueryEmr", emr.query_emr, PACS, {
        "patient_id": patient_id, "scope": "CURRENT_VISIT", "visit_no": visit["visit_no"],
        "include_orders": True, "requested_by": RADIOLOGIST})

    run("Ping", ping, HIS, {"echo": "hello"})
    return out


@pytest.fixture(scope="module")
def hospital_day(sessions):
    hospital = Hospital(sessions, Settings(charge_point=ChargePoint.NURSE_SEND))
    return hospital, a_day(hospital)


@pytest.fixture
def day(hospital_day):
    return hospital_day[1]


def test_the_day_runs_every_operation(day):
    assert {call.operation for call in day} == set(result_types())


def test_every_result_has_exactly_its_wire_types_fields(day):
    types, seen = result_types(), set()
    errors = [e for call in day
              for e in shape_errors(types[call.operation], call.result, call.operation, exact=True, seen=seen)]
    assert not errors, "\n".join(errors)
    # every type a result can hold was met with data, down to a package's components
    assert reachable_from(types.values()) - seen == set()


def test_a_package_component_was_among_the_items_checked(day):
    [got] = [call.result for call in day if call.operation == "GetApplication"]
    assert any(i.get("components") for i in got["application"]["items"])


def test_a_replayed_answer_carries_no_field_its_wire_type_lacks(hospital_day):
    hospital, day = hospital_day
    types, errors = result_types(), []
    changing = [call for call in day if "message_id" in call.request]
    assert {call.operation for call in changing} == changing_operations()
    for call in changing:
        replayed = call.use_case(hospital.uow(), hospital.settings, call.caller, call.request)
        assert isinstance(replayed, Replayed), call.operation
        errors += shape_errors(types[call.operation], replayed, call.operation, exact=False, seen=set())
    assert not errors, "\n".join(errors)


def reachable_from(result_types) -> set[str]:
    found: set[str] = set()
    for cls in result_types:
        reachable(cls, found)
    return found


def test_every_notification_carries_no_field_its_callback_request_lacks(hospital_day, engine):
    """What the day wrote to the outbox, as the deliverer sends it (stored as JSON, so
    without its empty fields): nothing the callback's request type would drop."""
    _, day = hospital_day
    numbers = sorted({call.request["application_no"] for call in day if "application_no" in call.request})
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, kind, payload, occurred_at FROM outbox_events "
                                 "WHERE application_no = ANY(:numbers) ORDER BY id"), {"numbers": numbers}).all()
    errors, kinds = [], set()
    for pk, kind, payload, occurred_at in rows:
        kinds.add(Notification(kind))
        plain = {**payload, "message_id": f"N{pk}", "sequence": pk, "occurred_at": occurred_at}
        errors += shape_errors(REQUEST_TYPES[Notification(kind)], plain, kind, exact=False, seen=set())
    assert not errors, "\n".join(errors)
    # CriticalValueOverdue comes from the deliverer's scan, built as CriticalValueUpdated is
    assert kinds == set(Notification) - {Notification.CRITICAL_VALUE_OVERDUE}
