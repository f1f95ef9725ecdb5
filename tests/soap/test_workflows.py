"""The seed's workflows walked over SOAP by zeep clients, as HIS and PACS would."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from zeep.exceptions import Fault

from tests.soap.conftest import (
    CLERK, NURSE, DOCTOR, T0, application_request, fault_code, fault_detail, security_header, unique,
)


def entries(wrapper, name):
    """zeep gives an absent or empty list wrapper as None."""
    return [] if wrapper is None else getattr(wrapper, name)


def pay(his, no, amount="150.00", message_id=None):
    return his.ConfirmPayment(request={"MessageId": message_id or unique("M"), "ApplicationNo": no,
                                       "Amount": Decimal(amount), "PaidAt": T0 + timedelta(minutes=5)})


def report(pacs, no, status, minutes=20, message_id=None, **extra):
    request = {"MessageId": message_id or unique("M"), "ApplicationNo": no, "Status": status,
               "OccurredAt": T0 + timedelta(minutes=minutes), "Operator": CLERK, **extra}
    if status == "REGISTERED":
        request.setdefault("AccessionNo", unique("ACC"))
    return pacs.ReportStatus(request=request)


def send(his, no):
    return his.SendInpatientOrder(request={"MessageId": unique("M"), "ApplicationNo": no, "Nurse": NURSE,
                                           "SentAt": T0 + timedelta(minutes=5)})


def cancel(his, no):
    return his.CancelApplication(request={"MessageId": unique("M"), "ApplicationNo": no, "Reason": "患者拒绝",
                                          "Operator": DOCTOR, "CancelledAt": T0 + timedelta(minutes=10)})


def refund(pacs, no, lines):
    return pacs.Refund(request={
        "MessageId": unique("M"), "RefundRequestNo": unique("R"), "ApplicationNo": no,
        "Lines": {"RefundLine": [{"ChargeId": cid, "Quantity": Decimal(q)} for cid, q in lines]},
        "Reason": "设备故障", "Operator": CLERK, "RequestedAt": T0 + timedelta(minutes=40)})


def submit(his, **kwargs):
    request = application_request(**kwargs)
    his.SubmitApplication(request=request)
    return request["ApplicationNo"]


def test_xiaoming_unpaid_then_paid_then_registered(his, pacs):
    no = submit(his)
    assert entries(pacs.QueryApplications(request={"ApplicationNo": no}).Applications, "ApplicationDetail") == []
    with pytest.raises(Fault) as unpaid:
        report(pacs, no, "REGISTERED")
    assert fault_code(unpaid.value) == "ApplicationNotFound"

    state = pay(his, no)  # zeep unwraps a result of one field: this is the ApplicationState
    assert (state.Status, state.HisStatus, state.Locked) == ("RELEASED", "待执行", False)
    [found] = pacs.QueryApplications(request={"ApplicationNo": no}).Applications.ApplicationDetail
    assert (found.Patient.Name, found.Items.ApplicationItem[0].UnitPrice) == ("小明", Decimal("150.00"))

    registered = report(pacs, no, "REGISTERED", AccessionNo="ACC-XM")
    assert registered.Applied is True
    assert (registered.Application.Status, registered.Application.HisStatus) == ("REGISTERED", "执行中")
    assert registered.Application.Locked is True

    with pytest.raises(Fault) as refused:
        cancel(his, no)
    assert fault_code(refused.value) == "ApplicationLocked"
    detail = fault_detail(refused.value)
    assert (detail["Code"], detail["Retryable"]) == ("ApplicationLocked", "false")

    got = his.GetApplication(request={"ApplicationNo": no})
    assert [e.Event for e in got.Timeline.StatusEvent] == ["SUBMITTED", "PAID", "REGISTERED"]
    assert got.Application.AccessionNo == "ACC-XM"
    assert got.Application.UpdatedAt.utcoffset() == timedelta(hours=8)


def test_inpatient_nurse_send_and_cancel_reversal(his):
    no = submit(his, patient_type="INPATIENT")
    [line] = send(his, no).Charges.ChargeLine
    assert (line.Trigger, line.Amount) == ("NURSE_SEND", Decimal("150.00"))
    result = cancel(his, no)
    assert result.RefundDue is False
    assert result.ReversedCharges.ChargeLine[0].RefundedAmount == Decimal("150.00")
    ledger = his.QueryCharges(request={"ApplicationNo": no})
    assert ledger.TotalCharged == ledger.TotalRefunded == Decimal("150.00")


def test_inpatient_pacs_register_charge_point(his, pacs):
    no = submit(his, patient_type="INPATIENT", executing="MR")
    assert entries(send(his, no).Charges, "ChargeLine") == []
    [line] = report(pacs, no, "REGISTERED").Charges.ChargeLine
    assert line.Trigger == "PACS_REGISTER"
    undone = report(pacs, no, "REGISTRATION_CANCELLED", minutes=30)
    assert undone.Application.Status == "RELEASED"
    assert undone.Charges.ChargeLine[0].RefundedAmount == Decimal("150.00")


def test_xiaoli_refund_after_registration_and_the_needle(his, pacs):
    package = {"ItemCode": "PKG-CTZQ", "ItemName": "CT增强组套", "Quantity": Decimal("1"),
               "UnitPrice": Decimal("0"), "Components": {"ApplicationItem": [
                   {"ItemCode": "CTZQ", "ItemName": "CT增强", "Quantity": Decimal("1"), "UnitPrice": Decimal("400.00")},
                   {"ItemCode": "LZZ", "ItemName": "留置针", "Quantity": Decimal("1"), "UnitPrice": Decimal("35.00")},
               ]}}
    no = submit(his, patient_type="INPATIENT", items=[package])
    lines = {c.ItemCode: c for c in send(his, no).Charges.ChargeLine}
    assert lines["LZZ"].PackageItemCode == "PKG-CTZQ"
    report(pacs, no, "REGISTERED")
    result = refund(pacs, no, [(lines["LZZ"].ChargeId, "1")])
    assert result.Refunds.RefundRecord[0].Amount == Decimal("35.00")
    ledger = his.QueryCharges(request={"ApplicationNo": no})
    refunded = {c.ItemCode: c.RefundedAmount for c in ledger.Charges.ChargeLine}
    assert refunded == {"CTZQ": Decimal("0.00"), "LZZ": Decimal("35.00")}
    assert (ledger.TotalCharged, ledger.TotalRefunded) == (Decimal("435.00"), Decimal("35.00"))


def test_pacs_charge_for_an_inpatient(his, pacs):
    no = submit(his, patient_type="INPATIENT")
    send(his, no)
    result = pacs.Charge(request={
        "MessageId": unique("M"), "ChargeRequestNo": unique("C"), "ApplicationNo": no,
        "Items": {"ApplicationItem": [{"ItemCode": "YZJ", "ItemName": "造影剂", "Quantity": Decimal("0.5"),
                                       "UnitPrice": Decimal("99.99")}]},
        "Operator": CLERK, "ChargedAt": T0 + timedelta(minutes=30)})
    [line] = result.ChargeLine  # ChargeResult has one field, Charges, which zeep unwraps
    assert (line.Amount, line.Quantity, line.Trigger) == (Decimal("50.00"), Decimal("0.500"), "PACS_CHARGE")


def test_a_retry_gets_the_same_bytes(base_url, his):
    """A legacy HIS resending on timeout must see exactly the first answer."""
    no = submit(his)
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="urn:his-pacs-ws:v1">
 {security_header()}<soapenv:Body><v1:ConfirmPayment><v1:request>
  <v1:MessageId>{unique("M")}</v1:MessageId><v1:ApplicationNo>{no}</v1:ApplicationNo>
  <v1:Amount>150.00</v1:Amount><v1:PaidAt>2026-11-26T09:05:00</v1:PaidAt>
 </v1:request></v1:ConfirmPayment></soapenv:Body></soapenv:Envelope>""".encode()
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "ConfirmPayment"}
    first = requests.post(f"{base_url}/ws/his", data=body, headers=headers, timeout=10)
    second = requests.post(f"{base_url}/ws/his", data=body, headers=headers, timeout=10)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert b"<tns:PaidAt>2026-11-26T09:05:00+08:00</tns:PaidAt>" not in first.content  # state only
    assert b"+08:00</tns:UpdatedAt>" in first.content


def test_message_id_reuse_is_a_fault(his):
    no = submit(his)
    message_id = unique("M")
    pay(his, no, message_id=message_id)
    with pytest.raises(Fault) as reused:
        pay(his, submit(his), message_id=message_id)
    assert fault_code(reused.value) == "MessageIdReused"


def test_amount_mismatch_names_no_patient(his):
    no = submit(his)
    with pytest.raises(Fault) as mismatch:
        pay(his, no, amount="15.00")
    assert fault_code(mismatch.value) == "AmountMismatch"
    assert "小明" not in mismatch.value.message


def test_get_application_shows_what_was_submitted(his):
    request = application_request(ClinicalDiagnosis="头痛待查", Priority="URGENT")
    request["Patient"].update({"BirthDate": "1990-05-01", "Phone": "13800000000"})
    his.SubmitApplication(request=request)
    detail = his.GetApplication(request={"ApplicationNo": request["ApplicationNo"]}).Application
    assert (detail.ClinicalDiagnosis, detail.Priority, detail.Patient.Phone) == ("头痛待查", "URGENT", "13800000000")
    assert str(detail.Patient.BirthDate) == "1990-05-01"
    assert detail.OrderedAt == T0
    assert detail.TotalAmount == Decimal("150.00")


def test_worklist_paging_over_soap(his, pacs):
    department = unique("D")
    numbers = [submit(his, executing=department) for _ in range(3)]
    for no in numbers:
        pay(his, no)
    first = pacs.QueryApplications(request={"ExecutingDepartmentCode": department, "PageSize": 2})
    second = pacs.QueryApplications(request={"ExecutingDepartmentCode": department, "PageSize": 2,
                                             "PageToken": first.NextPageToken})
    seen = [a.ApplicationNo for a in first.Applications.ApplicationDetail + second.Applications.ApplicationDetail]
    assert seen == numbers
    assert second.NextPageToken is None
