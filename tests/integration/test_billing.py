"""Charge points, PACS charges and refunds, and the ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest

from his_pacs_ws.domain import errors
from his_pacs_ws.services.common import jsonable
from tests.integration.conftest import HIS, item, unique

NEEDLE = item(code="LZZ", name="留置针", price="35.00", modality=None)
CONTRAST_CT = item(code="CTZQ", name="CT增强", price="400.00")


def lines_by_code(result_lines):
    return {line["item_code"]: line for line in result_lines}


def test_nurse_send_charges_all_items(hospital):
    no = hospital.submit(patient_type="INPATIENT",
                         items=[item(), item(code="FILM", name="胶片", quantity="2", price="10.50")])
    result = hospital.send(no)
    assert result["application"]["status"] == "RELEASED"
    assert [(c["item_code"], c["amount"], c["trigger"]) for c in result["charges"]] == [
        ("CT001", Decimal("150.00"), "NURSE_SEND"), ("FILM", Decimal("21.00"), "NURSE_SEND")]


def test_cancel_before_registration_reverses_nurse_send_charges(hospital):
    no = hospital.submit(patient_type="INPATIENT")
    hospital.send(no)
    result = hospital.cancel(no)
    assert result["refund_due"] is False
    [line] = result["reversed_charges"]
    assert line["refunded_quantity"] == line["quantity"]
    ledger = hospital.charges(application_no=no)
    assert ledger["total_charged"] == ledger["total_refunded"] == Decimal("150.00")
    assert [r["source"] for r in ledger["refunds"]] == ["HIS_CANCEL"]


def test_pacs_register_charge_point_charges_at_registration(register_charging):
    h = register_charging
    no = h.submit(patient_type="INPATIENT", executing="MR", items=[item(code="MR01", price="600.00")])
    assert h.send(no)["charges"] == []
    result = h.pacs(no, "REGISTERED")
    assert [(c["item_code"], c["trigger"]) for c in result["charges"]] == [("MR01", "PACS_REGISTER")]


def test_other_departments_keep_the_hospital_default(register_charging):
    no = register_charging.submit(patient_type="INPATIENT", executing="CT")
    assert [c["trigger"] for c in register_charging.send(no)["charges"]] == ["NURSE_SEND"]


def test_registration_cancelled_reverses_registration_charges(register_charging):
    h = register_charging
    no = h.submit(patient_type="INPATIENT", executing="MR")
    h.send(no)
    h.pacs(no, "REGISTERED", minutes=20)
    result = h.pacs(no, "REGISTRATION_CANCELLED", minutes=25)
    assert [c["refunded_amount"] for c in result["charges"]] == [Decimal("150.00")]
    assert [r["source"] for r in h.charges(application_no=no)["refunds"]] == ["REGISTRATION_CANCELLED"]
    # registering again charges again, once
    again = h.pacs(no, "REGISTERED", minutes=30)
    assert len(again["charges"]) == 1
    ledger = h.charges(application_no=no)
    assert ledger["total_charged"] - ledger["total_refunded"] == Decimal("150.00")


def test_examined_straight_from_released_charges_as_registration(register_charging):
    h = register_charging
    no = h.submit(patient_type="INPATIENT", executing="MR")
    h.send(no)
    assert [c["trigger"] for c in h.pacs(no, "EXAMINED")["charges"]] == ["PACS_REGISTER"]
    assert h.pacs(no, "REGISTERED", minutes=10)["charges"] == []  # stale: no second charge


def test_charge_point_is_fixed_when_the_order_is_sent(sessions):
    from his_pacs_ws.config import Settings
    from his_pacs_ws.domain.billing import ChargePoint
    from tests.integration.conftest import Hospital

    before = Hospital(sessions, Settings(charge_point=ChargePoint.NURSE_SEND))
    after = Hospital(sessions, Settings(charge_point=ChargePoint.PACS_REGISTER))
    no = before.submit(patient_type="INPATIENT")
    before.send(no)
    assert after.pacs(no, "REGISTERED")["charges"] == []
    assert len(after.charges(application_no=no)["charges"]) == 1


def test_pacs_charges_an_inpatient(hospital):
    no = hospital.submit(patient_type="INPATIENT")
    hospital.send(no)
    hospital.pacs(no, "REGISTERED")
    result = hospital.charge(no, [item(code="YZJ", name="造影剂", quantity="1.5", price="120.00")])
    [line] = result["charges"]
    assert (line["trigger"], line["amount"], line["quantity"]) == ("PACS_CHARGE", Decimal("180.00"), Decimal("1.5"))


def test_pacs_cannot_charge_an_outpatient(hospital):
    no = hospital.submit()
    hospital.pay(no)
    with pytest.raises(errors.ChargeNotAllowed):
        hospital.charge(no, [item()])


def test_pacs_cannot_charge_a_cancelled_application(hospital):
    no = hospital.submit(patient_type="INPATIENT")
    hospital.send(no)
    hospital.cancel(no)
    with pytest.raises(errors.ChargeNotAllowed):
        hospital.charge(no, [item()])


def test_pacs_cannot_charge_an_application_it_cannot_see(hospital):
    no = hospital.submit(patient_type="INPATIENT")
    with pytest.raises(errors.ApplicationNotFound):
        hospital.charge(no, [item()])


def test_charge_request_no_is_idempotent(hospital):
    no = hospital.submit(patient_type="INPATIENT")
    hospital.send(no)
    request_no = unique("C")
    first = hospital.charge(no, [item(code="YZJ", price="120.00")], request_no=request_no)
    second = hospital.charge(no, [item(code="YZJ", price="120.00")], request_no=request_no)
    assert jsonable(first["charges"]) == jsonable(second["charges"])
    assert len(hospital.charges(application_no=no)["charges"]) == 2  # the send's line + one
    with pytest.raises(errors.ChargeRequestExists):
        hospital.charge(no, [item(code="YZJ", price="99.00")], request_no=request_no)


def test_pacs_refund_after_registration_skips_the_status_check(hospital):
    """小李 fell when the CT failed; the director waived his fee though he was registered."""
    no = hospital.submit(patient_type="INPATIENT")
    [line] = hospital.send(no)["charges"]
    hospital.pacs(no, "REGISTERED")
    with pytest.raises(errors.ApplicationLocked):
        hospital.cancel(no)
    result = hospital.refund(no, [(line["charge_id"], "1")])
    [refund] = result["refunds"]
    assert (refund["amount"], refund["source"]) == (Decimal("150.00"), "PACS")
    assert result["charges"][0]["refunded_amount"] == Decimal("150.00")


def test_a_package_component_is_refunded_alone(hospital):
    """The ward nurse placed the 留置针: CT refunds that one line, the ward charges it."""
    package = item(code="PKG-CT", name="CT增强组套", price="0", components=[CONTRAST_CT, NEEDLE])
    no = hospital.submit(patient_type="INPATIENT", items=[package])
    charged = lines_by_code(hospital.send(no)["charges"])
    assert charged["LZZ"]["package_item_code"] == "PKG-CT"
    hospital.refund(no, [(charged["LZZ"]["charge_id"], "1")])
    after = lines_by_code(hospital.charges(application_no=no)["charges"])
    assert after["LZZ"]["refunded_amount"] == Decimal("35.00")
    assert after["CTZQ"]["refunded_amount"] == 0


def test_refund_never_exceeds_the_line(hospital):
    no = hospital.submit(patient_type="INPATIENT", items=[item(quantity="2", price="10.00")])
    [line] = hospital.send(no)["charges"]
    hospital.refund(no, [(line["charge_id"], "1.5")])
    with pytest.raises(errors.RefundExceedsCharge):
        hospital.refund(no, [(line["charge_id"], "0.6")])
    with pytest.raises(errors.RefundExceedsCharge):
        hospital.refund(no, [(line["charge_id"], "0.3"), (line["charge_id"], "0.3")])
    hospital.refund(no, [(line["charge_id"], "0.5")])
    [after] = hospital.charges(application_no=no)["charges"]
    assert (after["refunded_quantity"], after["refunded_amount"]) == (Decimal("2"), Decimal("20.00"))


def test_partial_refunds_never_lose_a_fen(hospital):
    no = hospital.submit(patient_type="INPATIENT", items=[item(quantity="3", price="0.33")])
    [line] = hospital.send(no)["charges"]
    assert line["amount"] == Decimal("0.99")
    amounts = [hospital.refund(no, [(line["charge_id"], "1")])["refunds"][0]["amount"] for _ in range(3)]
    assert sum(amounts) == Decimal("0.99")


def test_refund_of_an_unknown_or_foreign_line(hospital):
    no = hospital.submit(patient_type="INPATIENT")
    hospital.send(no)
    other = hospital.submit(patient_type="INPATIENT")
    [foreign] = hospital.send(other)["charges"]
    with pytest.raises(errors.ChargeNotFound):
        hospital.refund(no, [(foreign["charge_id"], "1")])
    with pytest.raises(errors.ChargeNotFound):
        hospital.refund(no, [("999999999", "1")])
    for bogus in ("abc", "1_0", "+1", " 1", "9" * 30):
        with pytest.raises(errors.ChargeNotFound):
            hospital.refund(no, [(bogus, "1")])


def test_outpatient_charges_are_refunded_by_the_cashier(hospital):
    no = hospital.submit()
    hospital.pay(no)
    [line] = hospital.charges(application_no=no)["charges"]
    assert line["trigger"] == "PAYMENT"
    with pytest.raises(errors.RefundNotAllowed):
        hospital.refund(no, [(line["charge_id"], "1")])


def test_refund_request_no_is_idempotent(hospital):
    no = hospital.submit(patient_type="INPATIENT", items=[item(quantity="2", price="10.00")])
    [line] = hospital.send(no)["charges"]
    request_no = unique("R")
    first = hospital.refund(no, [(line["charge_id"], "1")], request_no=request_no)
    second = hospital.refund(no, [(line["charge_id"], "1")], request_no=request_no)
    assert jsonable(first["refunds"]) == jsonable(second["refunds"])
    [after] = hospital.charges(application_no=no)["charges"]
    assert after["refunded_quantity"] == 1
    with pytest.raises(errors.RefundRequestExists):
        hospital.refund(no, [(line["charge_id"], "2")], request_no=request_no)


def test_query_charges_by_patient_and_visit(hospital):
    request = hospital.submit_request(patient_type="INPATIENT")
    from his_pacs_ws.services import applications

    applications.submit_application(hospital.uow(), hospital.settings, HIS, request)
    hospital.send(request["application_no"])
    patient_id, visit_no = request["patient"]["patient_id"], request["visit"]["visit_no"]
    second = hospital.submit_request(patient_type="INPATIENT", patient=request["patient"],
                                     visit={"visit_no": unique("V"), "patient_type": "INPATIENT"})
    applications.submit_application(hospital.uow(), hospital.settings, HIS, second)
    hospital.send(second["application_no"])
    assert len(hospital.charges(patient_id=patient_id)["charges"]) == 2
    assert len(hospital.charges(patient_id=patient_id, visit_no=visit_no)["charges"]) == 1
    with pytest.raises(errors.SchemaValidationError):
        hospital.charges()


def test_pacs_reads_the_ledger_of_what_it_can_see(hospital):
    """PACS finds the ChargeIds it refunds (小李's charge came with the nurse's send)."""
    from his_pacs_ws.domain.access import Caller, Role
    from his_pacs_ws.services import ledger

    no = hospital.submit(patient_type="INPATIENT", executing="CT")
    unsent = hospital.submit(patient_type="INPATIENT", executing="CT")
    [line] = hospital.send(no)["charges"]

    def pacs_view(caller, application_no):
        return ledger.query_charges(hospital.uow(), hospital.settings, caller, {"application_no": application_no})

    pacs = Caller("pacs", Role.PACS)
    assert [c["charge_id"] for c in pacs_view(pacs, no)["charges"]] == [line["charge_id"]]
    assert pacs_view(pacs, unsent)["charges"] == []
    assert pacs_view(Caller("pacs-mr", Role.PACS, frozenset({"MR"})), no)["charges"] == []
