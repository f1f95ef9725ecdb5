"""The application lifecycle: payment gating, the status machine, the lock, cancellation."""

from __future__ import annotations

import pytest

from his_pacs_ws.domain import errors
from tests.integration.conftest import HIS, item, unique


def test_new_application_is_invisible_to_pacs(hospital):
    no = hospital.submit()
    assert hospital.status(no) == "NEW"
    assert hospital.worklist(application_no=no)["applications"] == []
    assert hospital.worklist(application_no=no, statuses=["NEW"])["applications"] == []
    with pytest.raises(errors.ApplicationNotFound):
        hospital.pacs(no, "REGISTERED")


def test_outpatient_payment_releases_to_the_worklist(hospital):
    no = hospital.submit()
    result = hospital.pay(no)
    assert result["application"]["status"] == "RELEASED"
    assert result["application"]["his_status"] == "待执行"
    [found] = hospital.worklist(application_no=no)["applications"]
    assert found["patient"]["name"] == "小明"
    assert found["items"][0]["item_code"] == "CT001"


def test_unpaid_outpatient_shows_waiting_for_payment(hospital):
    no = hospital.submit()
    assert hospital.get(no)["application"]["his_status"] == "待收费"


def test_unsent_inpatient_shows_waiting_for_the_nurse(hospital):
    no = hospital.submit(patient_type="INPATIENT")
    assert hospital.get(no)["application"]["his_status"] == "待发送"


def test_payment_must_match_the_total(hospital):
    no = hospital.submit(items=[item(price="150.00"), item(code="FILM", name="胶片", quantity="2", price="10.50")])
    with pytest.raises(errors.AmountMismatch):
        hospital.pay(no, amount="150.00")
    assert hospital.status(no) == "NEW"
    assert hospital.pay(no, amount="171.00")["application"]["status"] == "RELEASED"


def test_inpatients_do_not_pay_at_the_cashier(hospital):
    no = hospital.submit(patient_type="INPATIENT")
    with pytest.raises(errors.NotOutpatient):
        hospital.pay(no)


@pytest.mark.parametrize("patient_type", ["OUTPATIENT", "EMERGENCY", "PHYSICAL_EXAM"])
def test_only_inpatient_orders_are_sent_by_the_nurse(hospital, patient_type):
    no = hospital.submit(patient_type=patient_type)
    with pytest.raises(errors.NotInpatient):
        hospital.send(no)


def test_paying_twice_is_an_invalid_transition(hospital):
    no = hospital.submit()
    hospital.pay(no)
    with pytest.raises(errors.InvalidTransition):
        hospital.pay(no)


def test_unknown_application(hospital):
    with pytest.raises(errors.ApplicationNotFound):
        hospital.pay(unique("A"))
    with pytest.raises(errors.ApplicationNotFound):
        hospital.get(unique("A"))


def test_registration_locks_the_application(hospital):
    no = hospital.submit()
    hospital.pay(no)
    result = hospital.pacs(no, "REGISTERED", accession_no="ACC-1")
    state = result["application"]
    assert result["applied"] is True
    assert (state["status"], state["his_status"], state["locked"], state["accession_no"]) == (
        "REGISTERED", "执行中", True, "ACC-1")


def test_cannot_cancel_after_registration(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.pacs(no, "REGISTERED")
    with pytest.raises(errors.ApplicationLocked):
        hospital.cancel(no)
    assert hospital.status(no) == "REGISTERED"


def test_cancel_before_registration_of_a_paid_application_is_refund_due(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.pacs(no, "SCHEDULED")
    result = hospital.cancel(no)
    assert result["application"]["status"] == "CANCELLED"
    assert result["application"]["his_status"] == "已撤销"
    assert result["refund_due"] is True
    assert [c["refunded_amount"] for c in result["reversed_charges"]] == [150]


def test_cancel_of_an_unpaid_application_owes_nothing(hospital):
    no = hospital.submit()
    result = hospital.cancel(no)
    assert result["refund_due"] is False
    assert result["reversed_charges"] == []


def test_cancelling_again_is_harmless(hospital):
    no = hospital.submit()
    hospital.cancel(no)
    again = hospital.cancel(no)
    assert again["application"]["status"] == "CANCELLED"
    events = [e["event"] for e in hospital.get(no)["timeline"]]
    assert events.count("CANCELLED") == 1


def test_an_application_cancelled_before_release_stays_invisible_to_pacs(hospital):
    department = unique("D")
    no = hospital.submit(executing=department)
    hospital.cancel(no)
    assert hospital.worklist(executing_department_code=department, statuses=["CANCELLED"])["applications"] == []
    with pytest.raises(errors.ApplicationNotFound):
        hospital.pacs(no, "REGISTERED")


def test_pacs_events_on_a_cancelled_application_are_invalid(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.cancel(no)
    with pytest.raises(errors.InvalidTransition):
        hospital.pacs(no, "REGISTERED")


def test_registration_needs_an_accession_number(hospital):
    no = hospital.submit()
    hospital.pay(no)
    with pytest.raises(errors.SchemaValidationError):
        hospital.pacs(no, "REGISTERED", accession_no=None)


def test_pacs_may_skip_steps_and_examined_implies_registration(hospital):
    no = hospital.submit()
    hospital.pay(no)
    result = hospital.pacs(no, "EXAMINED")
    assert result["application"]["status"] == "EXAMINED"
    assert result["application"]["locked"] is True


def test_stale_event_is_recorded_but_not_applied(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.pacs(no, "EXAMINED", minutes=30)
    late = hospital.pacs(no, "REGISTERED", minutes=20)
    assert late["applied"] is False
    assert late["application"]["status"] == "EXAMINED"
    timeline = hospital.get(no)["timeline"]
    assert [(e["event"], e["applied"]) for e in timeline] == [
        ("SUBMITTED", True), ("PAID", True), ("EXAMINED", True), ("REGISTERED", False)]


def test_schedule_cancelled_goes_back_to_released(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.pacs(no, "SCHEDULED")
    result = hospital.pacs(no, "SCHEDULE_CANCELLED", minutes=25)
    assert (result["applied"], result["application"]["status"]) == (True, "RELEASED")


def test_registration_cancelled_unlocks(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.pacs(no, "REGISTERED")
    result = hospital.pacs(no, "REGISTRATION_CANCELLED", minutes=25)
    assert result["application"]["status"] == "RELEASED"
    assert result["application"]["locked"] is False
    assert hospital.cancel(no)["application"]["status"] == "CANCELLED"


def test_registration_cannot_be_cancelled_after_the_exam(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.pacs(no, "EXAMINED")
    with pytest.raises(errors.InvalidTransition):
        hospital.pacs(no, "REGISTRATION_CANCELLED", minutes=40)
    assert hospital.status(no) == "EXAMINED"


def test_undo_with_nothing_to_undo_is_stale(hospital):
    no = hospital.submit()
    hospital.pay(no)
    result = hospital.pacs(no, "SCHEDULE_CANCELLED")
    assert (result["applied"], result["application"]["status"]) == (False, "RELEASED")


def test_event_from_before_an_undo_does_not_redo_it(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.pacs(no, "REGISTERED", minutes=20)
    hospital.pacs(no, "REGISTRATION_CANCELLED", minutes=30)
    delayed = hospital.pacs(no, "REGISTERED", minutes=25)
    assert delayed["applied"] is False
    assert hospital.status(no) == "RELEASED"
    again = hospital.pacs(no, "REGISTERED", minutes=35)
    assert again["applied"] is True


def test_same_application_no_with_other_content_is_refused(hospital):
    request = hospital.submit_request()
    from his_pacs_ws.services import applications

    applications.submit_application(hospital.uow(), hospital.settings, HIS, request)
    changed = {**request, "message_id": unique("M"), "exam_purpose": "复查"}
    with pytest.raises(errors.ApplicationExists):
        applications.submit_application(hospital.uow(), hospital.settings, HIS, changed)
    resent = {**request, "message_id": unique("M")}
    result = applications.submit_application(hospital.uow(), hospital.settings, HIS, resent)
    assert result["application"]["status"] == "NEW"


def test_package_components_and_nesting(hospital):
    needle = item(code="LZZ", name="留置针", price="35.00", modality=None)
    contrast = item(code="CTZQ", name="CT增强", price="400.00")
    package = item(code="PKG-CT", name="CT增强组套", price="0", components=[contrast, needle])
    no = hospital.submit(patient_type="INPATIENT", items=[package])
    detail = hospital.get(no)["application"]
    assert detail["total_amount"] == 435
    assert [c["item_code"] for c in detail["items"][0]["components"]] == ["CTZQ", "LZZ"]
    nested = item(code="PKG2", components=[package])
    with pytest.raises(errors.SchemaValidationError):
        hospital.submit(items=[nested])


def test_worklist_filters_and_pages(hospital):
    department = unique("DEPT")
    numbers = []
    for _ in range(5):
        no = hospital.submit(executing=department)
        hospital.pay(no)
        numbers.append(no)
    hospital.pacs(numbers[0], "REGISTERED")
    page = hospital.worklist(executing_department_code=department, page_size=2)
    seen = [a["application_no"] for a in page["applications"]]
    while page["next_page_token"]:
        page = hospital.worklist(executing_department_code=department, page_size=2,
                                 page_token=page["next_page_token"])
        seen += [a["application_no"] for a in page["applications"]]
    assert seen == numbers[1:]
    registered = hospital.worklist(executing_department_code=department, statuses=["REGISTERED"])
    assert [a["application_no"] for a in registered["applications"]] == numbers[:1]


@pytest.mark.parametrize("token", ["not-a-token", "djE6OTk5OTk5OTk5OTk5OTk5OTk5OTk", "djE6LTE"])
def test_worklist_rejects_a_forged_page_token(hospital, token):
    with pytest.raises(errors.SchemaValidationError):
        hospital.worklist(page_token=token)


def test_a_late_registration_cancel_does_not_undo_a_later_registration(register_charging):
    """REGISTERED 11:00, REGISTERED 11:20 (stale), then REGISTRATION_CANCELLED 11:10 arrives."""
    h = register_charging
    no = h.submit(patient_type="INPATIENT", executing="MR")
    h.send(no)
    h.pacs(no, "REGISTERED", minutes=120)
    assert h.pacs(no, "REGISTERED", minutes=140)["applied"] is False
    late = h.pacs(no, "REGISTRATION_CANCELLED", minutes=130)
    assert (late["applied"], late["application"]["status"], late["application"]["locked"]) == (
        False, "REGISTERED", True)
    assert late["charges"] == []
    with pytest.raises(errors.ApplicationLocked):
        h.cancel(no)
    ledger = h.charges(application_no=no)
    assert (ledger["total_charged"], ledger["total_refunded"]) == (150, 0)


def test_a_late_schedule_cancel_after_registration_is_stale(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.pacs(no, "SCHEDULED", minutes=20)
    hospital.pacs(no, "REGISTERED", minutes=50)
    late = hospital.pacs(no, "SCHEDULE_CANCELLED", minutes=30)
    assert (late["applied"], late["application"]["status"]) == (False, "REGISTERED")


def test_a_schedule_cancel_does_not_void_an_earlier_registration(hospital):
    no = hospital.submit()
    hospital.pay(no)
    hospital.pacs(no, "SCHEDULED", minutes=10)
    hospital.pacs(no, "SCHEDULE_CANCELLED", minutes=30)
    delayed = hospital.pacs(no, "REGISTERED", minutes=20)
    assert (delayed["applied"], delayed["application"]["status"]) == (True, "REGISTERED")
