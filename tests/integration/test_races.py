"""Races that real hospitals produce: retries on timeouts, a cancel crossing a registration,
two refunds of one line. Row locks and unique keys in PostgreSQL decide; never both win."""

from __future__ import annotations

import threading
from decimal import Decimal

from his_pacs_ws.domain import errors
from his_pacs_ws.services.common import jsonable
from tests.integration.conftest import HIS, item, unique

ROUNDS = 8


def run_together(*calls):
    """Start every call at the same moment; return each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def worker(index, call):
        barrier.wait()
        try:
            outcomes[index] = call()
        except Exception as exc:  # collected and asserted on by the test
            outcomes[index] = exc

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_cancel_racing_registration_never_both_win(hospital):
    for _ in range(ROUNDS):
        no = hospital.submit(patient_type="INPATIENT")
        hospital.send(no)
        cancel, register = run_together(lambda: hospital.cancel(no), lambda: hospital.pacs(no, "REGISTERED"))
        final = hospital.get(no)
        if isinstance(cancel, Exception):
            assert isinstance(cancel, errors.ApplicationLocked)
            assert register["applied"] is True
            assert final["application"]["status"] == "REGISTERED"
            assert all(c["refunded_amount"] == 0 for c in final["charges"])
        else:
            assert isinstance(register, errors.InvalidTransition)
            assert final["application"]["status"] == "CANCELLED"
            assert all(c["refunded_amount"] == c["amount"] for c in final["charges"])


def test_parallel_refunds_never_exceed_the_line(hospital):
    for _ in range(ROUNDS):
        no = hospital.submit(patient_type="INPATIENT", items=[item(quantity="1", price="150.00")])
        [line] = hospital.send(no)["charges"]
        outcomes = run_together(*[lambda: hospital.refund(no, [(line["charge_id"], "1")])] * 4)
        wins = [o for o in outcomes if not isinstance(o, Exception)]
        assert len(wins) == 1
        assert all(isinstance(o, errors.RefundExceedsCharge) for o in outcomes if o not in wins)
        [after] = hospital.charges(application_no=no)["charges"]
        assert after["refunded_amount"] == Decimal("150.00")


def test_a_retry_racing_the_original_applies_once(hospital):
    for _ in range(ROUNDS):
        no = hospital.submit(patient_type="INPATIENT")
        message_id = unique("M")
        first, second = run_together(lambda: hospital.send(no, message_id=message_id),
                                     lambda: hospital.send(no, message_id=message_id))
        assert jsonable(first) == jsonable(second)
        assert len(hospital.charges(application_no=no)["charges"]) == 1


def test_one_charge_request_racing_under_two_message_ids_charges_once(hospital):
    for _ in range(ROUNDS):
        no = hospital.submit(patient_type="INPATIENT")
        hospital.send(no)
        request_no = unique("C")
        a, b = run_together(
            lambda: hospital.charge(no, [item(code="YZJ", price="80.00")], request_no=request_no),
            lambda: hospital.charge(no, [item(code="YZJ", price="80.00")], request_no=request_no),
        )
        assert jsonable(a["charges"]) == jsonable(b["charges"])
        codes = [c["item_code"] for c in hospital.charges(application_no=no)["charges"]]
        assert codes.count("YZJ") == 1


def test_one_application_no_submitted_twice_at_once(hospital):
    from his_pacs_ws.services import applications

    for _ in range(ROUNDS):
        request = hospital.submit_request()
        again = {**request, "message_id": unique("M")}
        a, b = run_together(
            lambda: applications.submit_application(hospital.uow(), hospital.settings, HIS, request),
            lambda: applications.submit_application(hospital.uow(), hospital.settings, HIS, again),
        )
        assert a["application"]["application_no"] == b["application"]["application_no"]
        assert [e["event"] for e in hospital.get(request["application_no"])["timeline"]] == ["SUBMITTED"]
