"""What the console computes on its own: the board's order and the turnaround figures."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from his_pacs_ws.services import console, critical_values
from tests.integration.conftest import HIS, NURSE, T0, item, unique


def test_the_board_puts_the_unreceived_overdue_first_and_a_late_receipt_with_the_received(hospital):
    now = datetime.now(timezone.utc)
    no = hospital.released()

    def raised(minutes_ago):
        number = unique("CV")
        hospital.raise_cv(no, number=number, reported_at=now - timedelta(minutes=minutes_ago))
        return number

    late = raised(30)  # received 20 minutes after it was raised: past the 10-minute deadline
    critical_values.acknowledge(hospital.uow(), hospital.settings, HIS, {
        "message_id": unique("M"), "critical_value_no": late, "received_by": NURSE,
        "received_at": now - timedelta(minutes=10), "read_back_confirmed": True})
    overdue_long, overdue_short, waiting = raised(25.5), raised(12.5), raised(3.5)
    board = [cv for cv in console.critical_board(hospital.uow(), hospital.settings)
             if cv["application_no"] == no]
    assert [cv["critical_value_no"] for cv in board] == [overdue_long, overdue_short, waiting, late]
    assert [cv["waiting_overdue"] for cv in board] == [True, True, False, False]
    assert [cv["minutes_left"] for cv in board] == [-15, -2, 6, None]
    assert board[3]["overdue"]  # the audit still says it was received late


def test_turnaround_is_the_median_and_p90_per_department(hospital):
    department = "X" + uuid.uuid4().hex[:6]
    minutes = [30, 40, 50, 60, 120]
    for m in minutes:
        no = hospital.released(executing=department, items=[item(modality="CT")])
        hospital.push(no, "FINAL", minutes=m - 5)  # verified 5 minutes after it was written
    since, until = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    reports = [r for r in console.turnaround(hospital.uow(), since, until)["reports"] if r["department"] == department]
    assert reports == [{"department": department, "median": 50.0, "p90": 96.0, "count": 5}]
