"""SubmitApplication's single statement: each stage (existing application, patient, visit,
application, items, first event) and what stops it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from his_pacs_ws.db.models import Application, ApplicationItem, Patient, StatusEvent, Visit
from his_pacs_ws.domain import errors
from his_pacs_ws.services import applications
from tests.integration.conftest import HIS, item, unique


def scalar(sessions, stmt):
    with sessions() as session:
        return session.scalar(stmt)


def test_a_visit_of_another_patient_is_refused_and_nothing_is_stored(hospital, sessions):
    first = hospital.submit_request()
    applications.submit_application(hospital.uow(), hospital.settings, HIS, first)
    second = hospital.submit_request(visit=first["visit"])  # another patient, the same visit
    with pytest.raises(errors.PatientMismatch):
        applications.submit_application(hospital.uow(), hospital.settings, HIS, second)
    assert scalar(sessions, select(func.count()).where(
        Application.application_no == second["application_no"])) == 0
    assert scalar(sessions, select(func.count()).where(
        Patient.patient_id == second["patient"]["patient_id"])) == 0  # its upsert rolled back
    owner = scalar(sessions, select(Patient.patient_id).join(Visit, Visit.patient_pk == Patient.id)
                   .where(Visit.visit_no == first["visit"]["visit_no"]))
    assert owner == first["patient"]["patient_id"]


def test_a_resubmission_under_a_new_message_id_touches_nothing(hospital, sessions):
    request = hospital.submit_request()
    applications.submit_application(hospital.uow(), hospital.settings, HIS, request)
    # the patient's record moves on through another application
    later = hospital.submit_request(patient={**request["patient"], "name": "小明明", "phone": "13800000000"})
    applications.submit_application(hospital.uow(), hospital.settings, HIS, later)
    again = applications.submit_application(hospital.uow(), hospital.settings, HIS,
                                            {**request, "message_id": unique("M")})
    assert again["application"]["application_no"] == request["application_no"]
    assert again["application"]["status"] == "NEW"
    with hospital.sessions() as session:
        patient = session.scalars(select(Patient).where(
            Patient.patient_id == request["patient"]["patient_id"])).one()
        assert (patient.name, patient.phone) == ("小明明", "13800000000")  # not set back
        app = session.scalars(select(Application).where(
            Application.application_no == request["application_no"])).one()
        assert session.scalar(select(func.count()).where(ApplicationItem.application_pk == app.id)) == 1
        assert session.scalar(select(func.count()).where(StatusEvent.application_pk == app.id)) == 1


def test_the_same_application_no_with_other_content_conflicts(hospital):
    request = hospital.submit_request()
    applications.submit_application(hospital.uow(), hospital.settings, HIS, request)
    with pytest.raises(errors.ApplicationExists):
        applications.submit_application(hospital.uow(), hospital.settings, HIS, {
            **request, "message_id": unique("M"), "exam_purpose": "另一个目的"})


def test_a_value_not_given_keeps_what_is_stored(hospital, sessions):
    first = hospital.submit_request(patient={"patient_id": unique("P"), "name": "小红", "sex": "F",
                                             "phone": "13900000000", "id_card_no": "110101199001011234"})
    applications.submit_application(hospital.uow(), hospital.settings, HIS, first)
    second = hospital.submit_request(patient={"patient_id": first["patient"]["patient_id"], "name": "小红"},
                                     visit={**first["visit"], "ward_code": "W3"})
    applications.submit_application(hospital.uow(), hospital.settings, HIS, second)
    with hospital.sessions() as session:
        patient = session.scalars(select(Patient).where(
            Patient.patient_id == first["patient"]["patient_id"])).one()
        assert (patient.sex, patient.phone, patient.id_card_no) == ("F", "13900000000", "110101199001011234")
        visit = session.scalars(select(Visit).where(Visit.visit_no == first["visit"]["visit_no"])).one()
        assert visit.ward_code == "W3" and visit.patient_pk == patient.id


def test_packages_keep_their_components_in_order_with_exact_amounts(hospital):
    package = item("PKG1", "胸部组合", price="0.00", components=[
        item("CT101", "胸部CT平扫", price="200.10"), item("CT102", "胸部CT增强", quantity="2", price="0.05")])
    no = hospital.submit(items=[item("CT001", price="150.00"), package, item("XR1", price="33.33", modality="DR")])
    detail = hospital.get(no)["application"]
    assert [i["item_code"] for i in detail["items"]] == ["CT001", "PKG1", "XR1"]
    components = detail["items"][1]["components"]
    assert [(c["item_code"], c["quantity"], c["unit_price"]) for c in components] == [
        ("CT101", Decimal("1"), Decimal("200.10")), ("CT102", Decimal("2"), Decimal("0.05"))]
    assert all(isinstance(c["unit_price"], Decimal) for c in components)
    assert detail["total_amount"] == Decimal("383.53")
    assert [e["event"] for e in hospital.get(no)["timeline"]] == ["SUBMITTED"]
