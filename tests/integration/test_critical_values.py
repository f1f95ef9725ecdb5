"""The critical-value loop: raised, received with read-back, handled; revoked; overdue."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from his_pacs_ws.config import Settings
from his_pacs_ws.domain import errors
from tests.integration.conftest import HIS, Hospital, T0, unique


def test_the_closed_loop(hospital):
    no = hospital.released()
    raised = hospital.raise_cv(no, minutes=60)["critical_value"]
    number = raised["critical_value_no"]
    assert raised["status"] == "RAISED"
    assert raised["ack_deadline"] - raised["reported_at"] == timedelta(minutes=10)
    received = hospital.acknowledge(number, minutes=67)["critical_value"]
    assert (received["status"], received["read_back_confirmed"], received["minutes_to_receive"]) == (
        "RECEIVED", True, Decimal("7.0"))
    handled = hospital.handle(number, minutes=80)["critical_value"]
    assert (handled["status"], handled["minutes_to_handle"], handled["overdue"]) == ("HANDLED", Decimal("20.0"), False)
    assert handled["handled_by"]["name"] == "王医生"
    assert handled["handling_opinion"].startswith("已请神经内科会诊")
    # PACS sees the outcome
    [seen] = hospital.critical_values(application_no=no)["critical_values"]
    assert (seen["status"], seen["received_by"]["name"], seen["reviewed_by"]["name"]) == ("HANDLED", "李护士", "钱主任")


def test_received_after_the_deadline_is_overdue(hospital):
    no = hospital.released()
    number = hospital.raise_cv(no, minutes=60)["critical_value"]["critical_value_no"]
    late = hospital.acknowledge(number, minutes=75)["critical_value"]
    assert (late["overdue"], late["minutes_to_receive"]) == (True, Decimal("15.0"))


def test_still_waiting_past_the_deadline_is_overdue(hospital):
    no = hospital.released()
    number = hospital.raise_cv(no)["critical_value"]["critical_value_no"]  # raised in the past
    [waiting] = hospital.critical_values(application_no=no, overdue_only=True)["critical_values"]
    assert (waiting["critical_value_no"], waiting["overdue"], waiting["minutes_to_receive"]) == (number, True, None)


def test_a_short_deadline(sessions):
    hospital = Hospital(sessions, Settings(critical_ack_minutes=2))
    no = hospital.released()
    number = hospital.raise_cv(no, minutes=60)["critical_value"]["critical_value_no"]
    assert hospital.acknowledge(number, minutes=63)["critical_value"]["overdue"] is True


def test_receipt_needs_read_back(hospital):
    no = hospital.released()
    number = hospital.raise_cv(no)["critical_value"]["critical_value_no"]
    with pytest.raises(errors.InvalidTransition):
        hospital.acknowledge(number, read_back=False)
    assert hospital.critical_values(application_no=no)["critical_values"][0]["status"] == "RAISED"


def test_steps_out_of_order(hospital):
    no = hospital.released()
    number = hospital.raise_cv(no)["critical_value"]["critical_value_no"]
    with pytest.raises(errors.InvalidTransition):
        hospital.handle(number)
    hospital.acknowledge(number)
    with pytest.raises(errors.InvalidTransition):
        hospital.acknowledge(number)
    hospital.handle(number)
    with pytest.raises(errors.InvalidTransition):
        hospital.revoke(number)


def test_revoked_before_handling(hospital):
    no = hospital.released()
    number = hospital.raise_cv(no)["critical_value"]["critical_value_no"]
    hospital.acknowledge(number)
    revoked = hospital.revoke(number)["critical_value"]
    assert (revoked["status"], revoked["revoked_by"]["name"]) == ("REVOKED", "钱主任")
    assert revoked["revoked_at"] is not None and revoked["revoke_reason"].startswith("误报")
    assert hospital.revoke(number)["critical_value"]["status"] == "REVOKED"  # a repeat is harmless
    with pytest.raises(errors.InvalidTransition):
        hospital.handle(number)


def test_unknown_critical_value(hospital):
    with pytest.raises(errors.CriticalValueNotFound):
        hospital.acknowledge(unique("CV"))


def test_raise_is_idempotent_by_number(hospital):
    no = hospital.released()
    number = unique("CV")
    first = hospital.raise_cv(no, number=number)
    again = hospital.raise_cv(no, number=number)
    assert again["critical_value"]["critical_value_no"] == first["critical_value"]["critical_value_no"]
    with pytest.raises(errors.CriticalValueExists):
        hospital.raise_cv(no, number=number, finding="另一个发现")
    assert len(hospital.critical_values(application_no=no)["critical_values"]) == 1


def test_raise_for_an_application_pacs_cannot_see(hospital):
    no = hospital.submit()
    with pytest.raises(errors.ApplicationNotFound):
        hospital.raise_cv(no)


def test_query_filters(hospital):
    request = hospital.submit_request(visit={"visit_no": unique("V"), "patient_type": "INPATIENT",
                                             "ward_code": unique("W")})
    from his_pacs_ws.services import applications

    applications.submit_application(hospital.uow(), hospital.settings, HIS, request)
    no, ward = request["application_no"], request["visit"]["ward_code"]
    hospital.send(no)
    a = hospital.raise_cv(no)["critical_value"]["critical_value_no"]
    b = hospital.raise_cv(no, minutes=61)["critical_value"]["critical_value_no"]
    hospital.acknowledge(b)
    by_ward = hospital.critical_values(department_code=ward)["critical_values"]
    assert [cv["critical_value_no"] for cv in by_ward] == [b, a]  # newest first
    raised = hospital.critical_values(department_code=ward, statuses=["RAISED"])["critical_values"]
    assert [cv["critical_value_no"] for cv in raised] == [a]
    assert hospital.critical_values(patient_id=request["patient"]["patient_id"],
                                    **{"from": T0.replace(hour=23)})["critical_values"] == []
