"""The status machine as a table: ranks, HisStatus, the lock, stale and undo events."""

import pytest

from his_pacs_ws.domain import errors
from his_pacs_ws.domain.status import (
    PacsEvent,
    PatientType,
    Status,
    apply_pacs_event,
    check_his_cancel,
    check_release,
    his_status,
    is_locked,
    superseding_statuses,
)


@pytest.mark.parametrize("status, expected", [
    (Status.RELEASED, "待执行"), (Status.SCHEDULED, "待执行"), (Status.REGISTERED, "执行中"),
    (Status.EXAMINED, "执行中"), (Status.REPORTED, "执行中"), (Status.VERIFIED, "已完成"),
    (Status.CANCELLED, "已撤销"),
])
def test_his_status_follows_the_contract_table(status, expected):
    assert his_status(status, PatientType.OUTPATIENT) == expected


def test_new_shows_who_acts_next():
    assert his_status(Status.NEW, PatientType.OUTPATIENT) == "待收费"
    assert his_status(Status.NEW, PatientType.EMERGENCY) == "待收费"
    assert his_status(Status.NEW, PatientType.INPATIENT) == "待发送"


@pytest.mark.parametrize("status", list(Status))
def test_locked_from_registration_on(status):
    assert is_locked(status) == (status in {Status.REGISTERED, Status.EXAMINED, Status.REPORTED, Status.VERIFIED})


def test_forward_event_applies():
    assert apply_pacs_event(Status.RELEASED, PacsEvent.REGISTERED).applied


def test_event_at_or_below_current_rank_is_stale():
    outcome = apply_pacs_event(Status.EXAMINED, PacsEvent.REGISTERED)
    assert (outcome.status, outcome.applied) == (Status.REGISTERED, False)
    assert not apply_pacs_event(Status.REGISTERED, PacsEvent.REGISTERED).applied


def test_a_superseded_event_is_stale():
    assert not apply_pacs_event(Status.RELEASED, PacsEvent.REGISTERED, superseded=True).applied
    outcome = apply_pacs_event(Status.REGISTERED, PacsEvent.REGISTRATION_CANCELLED, superseded=True)
    assert (outcome.status, outcome.applied) == (Status.RELEASED, False)
    # a superseded undo is stale even where it would otherwise be impossible
    assert not apply_pacs_event(Status.REGISTERED, PacsEvent.SCHEDULE_CANCELLED, superseded=True).applied


def test_what_supersedes_what():
    assert superseding_statuses(PacsEvent.REGISTERED) == (["REGISTRATION_CANCELLED"], [])
    assert superseding_statuses(PacsEvent.EXAMINED) == ([], [])
    undos, statuses = superseding_statuses(PacsEvent.REGISTRATION_CANCELLED)
    assert (undos, statuses) == ([], ["REGISTERED", "EXAMINED", "REPORTED", "VERIFIED"])


def test_undo_events_go_back():
    assert apply_pacs_event(Status.SCHEDULED, PacsEvent.SCHEDULE_CANCELLED).status is Status.RELEASED
    assert apply_pacs_event(Status.REGISTERED, PacsEvent.REGISTRATION_CANCELLED).status is Status.RELEASED


def test_cannot_cancel_registration_after_the_exam():
    with pytest.raises(errors.InvalidTransition):
        apply_pacs_event(Status.EXAMINED, PacsEvent.REGISTRATION_CANCELLED)


def test_no_pacs_event_applies_to_a_cancelled_application():
    for event in PacsEvent:
        with pytest.raises(errors.InvalidTransition):
            apply_pacs_event(Status.CANCELLED, event)


def test_cannot_cancel_after_registration():
    with pytest.raises(errors.ApplicationLocked):
        check_his_cancel(Status.REGISTERED)
    assert check_his_cancel(Status.SCHEDULED) is False
    assert check_his_cancel(Status.CANCELLED) is True


def test_only_new_applications_are_released():
    check_release(Status.NEW, "ConfirmPayment")
    with pytest.raises(errors.InvalidTransition):
        check_release(Status.RELEASED, "ConfirmPayment")
