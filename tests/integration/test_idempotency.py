"""MessageId retries: the original answer, nothing applied twice."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from his_pacs_ws.db.models import Application, ChargeLine, StatusEvent
from his_pacs_ws.domain import errors
from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.services import applications
from his_pacs_ws.services.common import jsonable
from tests.integration.conftest import unique


def count(sessions, stmt):
    with sessions() as session:
        return session.scalar(stmt)


def test_a_retried_send_charges_once(hospital, sessions):
    no = hospital.submit(patient_type="INPATIENT")
    message_id = unique("M")
    first = hospital.send(no, message_id=message_id)
    second = hospital.send(no, message_id=message_id)
    assert jsonable(second) == jsonable(first)  # a replay comes back from its JSON record
    app_pk = count(sessions, select(Application.id).where(Application.application_no == no))
    assert count(sessions, select(func.count()).where(ChargeLine.application_pk == app_pk)) == 1
    assert count(sessions, select(func.count()).where(StatusEvent.application_pk == app_pk)) == 2


def test_a_retried_status_event_is_recorded_once(hospital, sessions):
    no = hospital.submit()
    hospital.pay(no)
    message_id = unique("M")
    hospital.pacs(no, "REGISTERED", message_id=message_id, accession_no="ACC-X")
    hospital.pacs(no, "REGISTERED", message_id=message_id, accession_no="ACC-X")
    events = [e["event"] for e in hospital.get(no)["timeline"]]
    assert events.count("REGISTERED") == 1


def test_message_id_reused_for_another_request(hospital):
    no = hospital.submit()
    message_id = unique("M")
    hospital.pay(no, message_id=message_id)
    other = hospital.submit()
    with pytest.raises(errors.MessageIdReused):
        hospital.pay(other, message_id=message_id)
    assert hospital.status(other) == "NEW"


def test_the_original_fault_is_replayed(hospital):
    no = hospital.submit()
    message_id = unique("M")
    with pytest.raises(errors.AmountMismatch) as first:
        hospital.pay(no, amount="1.00", message_id=message_id)
    with pytest.raises(errors.AmountMismatch) as again:
        hospital.pay(no, amount="1.00", message_id=message_id)
    assert str(first.value) == str(again.value)
    assert hospital.status(no) == "NEW"


def test_message_ids_are_scoped_by_caller(hospital):
    request = hospital.submit_request()
    applications.submit_application(hospital.uow(), hospital.settings, Caller("HIS-A", Role.HIS), request)
    other = hospital.submit_request(message_id=request["message_id"])
    result = applications.submit_application(hospital.uow(), hospital.settings, Caller("HIS-B", Role.HIS), other)
    assert result["application"]["application_no"] == other["application_no"]


def test_equal_decimals_are_the_same_request(hospital):
    no = hospital.submit()
    message_id = unique("M")
    hospital.pay(no, amount="150.00", message_id=message_id)
    assert hospital.pay(no, amount="150.0", message_id=message_id)["application"]["status"] == "RELEASED"


def test_a_fault_leaves_no_rows(hospital, sessions):
    no = hospital.submit(patient_type="INPATIENT")
    with pytest.raises(errors.NotOutpatient):
        hospital.pay(no)
    detail = hospital.get(no)
    assert [e["event"] for e in detail["timeline"]] == ["SUBMITTED"]
    assert detail["charges"] == []
