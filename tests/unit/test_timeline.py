"""The timeline's names: every PACS event and report status has its event, and what is
stored in status_events is never renamed."""

import pytest

from his_pacs_ws.domain.reports import ResultStatus
from his_pacs_ws.domain.status import UNDO, PacsEvent
from his_pacs_ws.domain.timeline import UNDOING, Event, Source


@pytest.mark.parametrize("pacs_event", list(PacsEvent))
def test_every_pacs_event_is_recorded_under_its_own_name(pacs_event):
    assert Event.of_pacs(pacs_event).value == pacs_event.value


@pytest.mark.parametrize("result", list(ResultStatus))
def test_every_report_status_has_its_report_event(result):
    assert Event.of_report(result).value == "REPORT_" + result.value


def test_the_undoing_events_are_the_pacs_undos_and_the_withdrawn_report():
    assert set(UNDOING) == {Event.of_pacs(e) for e in UNDO} | {Event.of_report(ResultStatus.WITHDRAWN)}


def test_stored_names_stay_as_they_were():
    # Rows written by earlier versions carry these; partners read them in the Timeline.
    assert [s.value for s in Source] == ["HIS", "PACS", "SYSTEM"]
    assert {e.value for e in Event} == {
        "SUBMITTED", "PAID", "ORDER_SENT", "CANCELLED", "SCHEDULED", "REGISTERED", "EXAMINED",
        "SCHEDULE_CANCELLED", "REGISTRATION_CANCELLED", "REPORT_PRELIMINARY", "REPORT_FINAL",
        "REPORT_CORRECTED", "REPORT_WITHDRAWN"}
