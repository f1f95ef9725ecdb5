"""EMR: documents and orders published by HIS, read by the radiologist, every read recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from his_pacs_ws.db.models import EmrAccess
from his_pacs_ws.domain import errors
from tests.integration.conftest import HIS, T0, unique


def doc(document_id=None, *, type_="入院记录", minutes=0, version=None, content="主诉：头痛3天"):
    data = {"document_id": document_id or unique("DOC"), "document_type": type_, "title": type_,
            "content": content, "recorded_at": T0 + timedelta(minutes=minutes), "author_name": "王医生"}
    if version is not None:
        data["version"] = version
    return data


def visit(patient_type="INPATIENT", days_ago=0, **extra):
    return {"visit_no": unique("V"), "patient_type": patient_type, "visit_at": T0 - timedelta(days=days_ago),
            "department_name": "神经内科", "diagnosis": "头痛待查", **extra}


def test_publish_then_read_this_visit(hospital):
    patient_id = unique("P")
    current = visit()
    hospital.publish(patient_id, current, [doc(minutes=5, type_="病程记录"), doc(minutes=1)],
                     orders=[{"order_no": unique("O"), "content": "头颅CT平扫", "ordered_at": T0}])
    result = hospital.emr(patient_id, visit_no=current["visit_no"], include_orders=True)
    [v] = result["visits"]
    assert v["visit_no"] == current["visit_no"]
    assert [d["document_type"] for d in v["documents"]] == ["入院记录", "病程记录"]  # oldest first
    assert [o["content"] for o in v["orders"]] == ["头颅CT平扫"]
    assert result["truncated"] is False


def test_all_visits_newest_first(hospital):
    patient_id = unique("P")
    old, new = visit(days_ago=400, patient_type="OUTPATIENT"), visit(days_ago=1)
    hospital.publish(patient_id, old, [doc()])
    hospital.publish(patient_id, new, [doc()])
    result = hospital.emr(patient_id, scope="ALL_VISITS")
    assert [v["visit_no"] for v in result["visits"]] == [new["visit_no"], old["visit_no"]]
    # without an anchor, the current visit is the newest
    assert [v["visit_no"] for v in hospital.emr(patient_id)["visits"]] == [new["visit_no"]]


def test_an_application_anchors_the_current_visit(hospital):
    request = hospital.submit_request(patient_type="INPATIENT")
    from his_pacs_ws.services import applications

    applications.submit_application(hospital.uow(), hospital.settings, HIS, request)
    hospital.send(request["application_no"])  # released: PACS may anchor on it
    patient_id = request["patient"]["patient_id"]
    hospital.publish(patient_id, {**request["visit"], "visit_at": T0 - timedelta(days=2)}, [doc()])
    hospital.publish(patient_id, visit(days_ago=0), [doc()])
    result = hospital.emr(patient_id, application_no=request["application_no"])
    assert [v["visit_no"] for v in result["visits"]] == [request["visit"]["visit_no"]]
    stranger = unique("P")
    hospital.publish(stranger, visit(), [doc()])
    with pytest.raises(errors.ApplicationNotFound):
        hospital.emr(stranger, application_no=request["application_no"])


def test_a_newer_version_wins(hospital):
    patient_id, v, document_id = unique("P"), visit(), unique("DOC")
    hospital.publish(patient_id, v, [doc(document_id, version=2, content="v2")])
    stale = hospital.publish(patient_id, v, [doc(document_id, version=1, content="v1")])
    assert (stale["documents_stored"], stale["documents_ignored"]) == (0, 1)
    newer = hospital.publish(patient_id, v, [doc(document_id, version=3, content="v3")])
    assert newer["documents_stored"] == 1
    [d] = hospital.emr(patient_id)["visits"][0]["documents"]
    assert (d["content"], d["version"]) == ("v3", 3)


def test_orders_are_upserted_by_number(hospital):
    patient_id, v, order_no = unique("P"), visit(), unique("O")
    hospital.publish(patient_id, v, orders=[{"order_no": order_no, "content": "头颅CT", "ordered_at": T0,
                                             "status": "新开"}])
    hospital.publish(patient_id, v, orders=[{"order_no": order_no, "content": "头颅CT", "ordered_at": T0,
                                             "status": "已执行"}])
    [o] = hospital.emr(patient_id, include_orders=True)["visits"][0]["orders"]
    assert o["status"] == "已执行"


def test_filters_and_the_cap(hospital):
    patient_id, v = unique("P"), visit()
    hospital.publish(patient_id, v, [doc(minutes=i, type_="病程记录") for i in range(5)] + [doc(type_="入院记录")])
    only = hospital.emr(patient_id, document_types=["入院记录"])["visits"][0]["documents"]
    assert [d["document_type"] for d in only] == ["入院记录"]
    capped = hospital.emr(patient_id, max_documents=2)
    assert capped["truncated"] is True
    assert [d["recorded_at"] for d in capped["visits"][0]["documents"]] == [
        T0 + timedelta(minutes=3), T0 + timedelta(minutes=4)]  # the newest two, oldest first
    ranged = hospital.emr(patient_id, **{"from": T0 + timedelta(minutes=2), "to": T0 + timedelta(minutes=4)})
    assert len(ranged["visits"][0]["documents"]) == 2


def test_unknown_patient(hospital):
    with pytest.raises(errors.PatientNotFound):
        hospital.emr(unique("P"))


def test_a_visit_of_another_patient(hospital):
    a, b, v = unique("P"), unique("P"), visit()
    hospital.publish(a, v, [doc()])
    with pytest.raises(errors.PatientMismatch):
        hospital.publish(b, v, [doc()])
    hospital.publish(b, visit(), [doc()])
    with pytest.raises(errors.PatientMismatch):
        hospital.emr(b, visit_no=v["visit_no"])


def test_an_application_cannot_move_a_visit_to_another_patient(hospital):
    """Many HIS number visits per patient: a clash must not hand one patient's records to another."""
    a, v = unique("P"), visit()
    hospital.publish(a, v, [doc(content="患者A的病历")])
    clash = hospital.submit_request(patient_type="INPATIENT", visit=v)
    from his_pacs_ws.services import applications

    with pytest.raises(errors.PatientMismatch):
        applications.submit_application(hospital.uow(), hospital.settings, HIS, clash)
    [kept] = hospital.emr(a)["visits"]
    assert kept["documents"][0]["content"] == "患者A的病历"


def test_documents_of_another_patient_are_refused(hospital):
    a, b, document_id = unique("P"), unique("P"), unique("DOC")
    hospital.publish(a, visit(), [doc(document_id)])
    with pytest.raises(errors.PatientMismatch):
        hospital.publish(b, visit(), [doc(document_id, version=5)])


def test_concurrent_publishes_of_one_document_both_answer(hospital):
    from tests.integration.test_races import run_together

    patient, document_id = unique("P"), unique("DOC")
    hospital.publish(patient, visit(), [doc()])  # the patient exists
    outcomes = run_together(*[
        (lambda v=visit(): hospital.publish(patient, v, [doc(document_id, version=2)])) for _ in range(4)])
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert sorted(o["documents_stored"] for o in outcomes) == [0, 0, 0, 1]


def test_nothing_to_publish(hospital):
    with pytest.raises(errors.SchemaValidationError):
        hospital.publish(unique("P"), visit())


def test_every_read_is_recorded(hospital, sessions):
    patient_id = unique("P")
    hospital.publish(patient_id, visit(), [doc(), doc()])
    hospital.emr(patient_id, requested_by={"code": "RAD01", "name": "赵医生"}, scope="ALL_VISITS")
    with sessions() as session:
        [access] = session.scalars(select(EmrAccess).where(EmrAccess.patient_id == patient_id)).all()
    assert (access.caller, access.requested_by_name, access.scope, access.documents_returned) == (
        "PACS", "赵医生", "ALL_VISITS", 2)


def test_an_anchor_pacs_cannot_see_is_refused(hospital):
    from his_pacs_ws.domain.access import Caller, Role
    from his_pacs_ws.services import emr as emr_service

    request = hospital.submit_request(patient_type="INPATIENT", executing="MR")
    from his_pacs_ws.services import applications

    applications.submit_application(hospital.uow(), hospital.settings, HIS, request)
    patient_id = request["patient"]["patient_id"]
    hospital.publish(patient_id, request["visit"], [doc()])
    with pytest.raises(errors.ApplicationNotFound):  # not sent by the nurse yet
        hospital.emr(patient_id, application_no=request["application_no"])
    hospital.send(request["application_no"])
    ct_only = Caller("pacs-ct", Role.PACS, frozenset({"CT"}))
    with pytest.raises(errors.AccessDenied):
        emr_service.query_emr(hospital.uow(), hospital.settings, ct_only,
                              {"patient_id": patient_id, "application_no": request["application_no"]})
