#!/usr/bin/env python3
"""Plays the seed article's HIS <-> PACS cases against a running deployment, says what
happened, and checks every expectation. Exit status 0 only if every scenario passed.

Every run uses fresh application numbers, patient ids and MessageIds, so it can be repeated
against the same deployment. Scenario e needs the deployment started with
HIS_PACS_CHARGE_POINT_BY_DEPARTMENT=<register department>=PACS_REGISTER (default MR).
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _client import base_parser, connect, fault_code, fault_detail, new_id, now, plain
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault

DOCTOR = {"Code": "D001", "Name": "王医生"}
NURSE = {"Code": "N001", "Name": "李护士"}
CLERK = {"Code": "R001", "Name": "登记员"}
DIRECTOR = {"Code": "D900", "Name": "放射科主任"}


def item(code, name, price, quantity="1", modality=None, components=None) -> dict:
    line = {"ItemCode": code, "ItemName": name, "Quantity": Decimal(quantity), "UnitPrice": Decimal(price)}
    if modality:
        line["Modality"] = modality
    if components:
        line["Components"] = {"ApplicationItem": components}
    return line


HEAD_CT = item("CT001", "头颅CT平扫", "150.00", modality="CT")
CHEST_CT = item("CT002", "胸部CT平扫", "200.00", modality="CT")
FILM = item("FILM01", "胶片", "10.00", quantity="2")
HEAD_MR = item("MR001", "头颅MR平扫", "450.00", modality="MR")
NEEDLE = item("ZL001", "留置针", "35.00")
ENHANCED_CT_PACKAGE = item("PKG-CTZQ", "CT增强组套", "435.00", modality="CT",
                           components=[item("CT003", "CT增强", "400.00"), NEEDLE])


class Failed(Exception):
    """The server did not behave as the contract says."""


def check(condition, message: str) -> None:
    if not condition:
        raise Failed(message)


def say(text: str) -> None:
    print(f"   {text}")


def entries(wrapper, name: str = "ChargeLine") -> list:
    """The entries of a list wrapper; an empty list may come back as None."""
    return list(getattr(wrapper, name, None) or []) if wrapper is not None else []


def total(items) -> Decimal:
    return sum((i["UnitPrice"] * i["Quantity"] for i in items), Decimal(0))


class Hospital:
    """The HIS and PACS sides of one deployment, with the calls the scenarios make."""

    def __init__(self, url: str, wsdl_dir: str, register_department: str):
        self.his = connect("his", url, wsdl_dir)
        self.pacs = connect("pacs", url, wsdl_dir)
        self.register_department = register_department

    def submit(self, name, patient_type, items, department="CT"):
        """Returns the ApplicationNo of a new application."""
        application_no = new_id("QA-A-")
        state = self.his.SubmitApplication(request={
            "MessageId": new_id("QA-M-"),
            "ApplicationNo": application_no,
            "Patient": {"PatientId": new_id("QA-P-"), "Name": name, "Sex": "M"},
            "Visit": {"VisitNo": new_id("QA-V-"), "PatientType": patient_type, "VisitAt": now()},
            "OrderingDoctor": DOCTOR,
            "OrderingDepartmentCode": "NK",
            "OrderingDepartmentName": "内科",
            "ExecutingDepartmentCode": department,
            "ExecutingDepartmentName": f"{department}室",
            "OrderedAt": now(),
            "Items": {"ApplicationItem": items},
        })
        check(state.Status == "NEW", f"a new application should be NEW, got {state.Status}")
        return application_no

    def pay_request(self, application_no, amount):
        return {"MessageId": new_id("QA-M-"), "ApplicationNo": application_no, "Amount": amount,
                "PaidAt": now(), "InvoiceNo": new_id("INV")[:20]}

    def send(self, application_no):
        return self.his.SendInpatientOrder(request={
            "MessageId": new_id("QA-M-"), "ApplicationNo": application_no, "Nurse": NURSE, "SentAt": now()})

    def cancel_request(self, application_no):
        return {"MessageId": new_id("QA-M-"), "ApplicationNo": application_no, "Reason": "患者要求取消",
                "Operator": DOCTOR, "CancelledAt": now()}

    def status_request(self, application_no, status, accession_no=None):
        request = {"MessageId": new_id("QA-M-"), "ApplicationNo": application_no, "Status": status,
                   "OccurredAt": now(), "Operator": CLERK}
        if accession_no:
            request["AccessionNo"] = accession_no
        return request

    def register(self, application_no):
        request = self.status_request(application_no, "REGISTERED", new_id("ACC")[:20])
        return self.pacs.ReportStatus(request=request)

    def refund(self, application_no, lines, reason):
        return self.pacs.Refund(request={
            "MessageId": new_id("QA-M-"), "RefundRequestNo": new_id("QA-R-"), "ApplicationNo": application_no,
            "Lines": {"RefundLine": [{"ChargeId": c, "Quantity": q} for c, q in lines]},
            "Reason": reason, "Operator": DIRECTOR, "RequestedAt": now()})

    def worklist(self, application_no):
        result = self.pacs.QueryApplications(request={"ApplicationNo": application_no})
        return entries(result.Applications, "ApplicationDetail")

    def charges(self, application_no):
        return self.his.QueryCharges(request={"ApplicationNo": application_no})

    def get(self, application_no):
        return self.his.GetApplication(request={"ApplicationNo": application_no})


def expect_fault(code: str, operation, request: dict) -> dict:
    """Call and require fault `code`; its ServiceFault detail."""
    try:
        operation(request=request)
    except Fault as fault:
        detail = fault_detail(fault)
        check(fault_code(fault) == code,
              f"expected fault {code}, got {fault_code(fault)}: {detail.get('Message', fault.message)}")
        check(detail.get("Code") == code, f"fault detail Code should be {code}, got {detail.get('Code')}")
        return detail
    raise Failed(f"expected fault {code}, but the call succeeded")


def check_state(state, status, his_status, locked=None) -> None:
    check(state.Status == status, f"expected status {status}, got {state.Status}")
    check(state.HisStatus == his_status, f"expected HisStatus {his_status}, got {state.HisStatus}")
    if locked is not None:
        check(state.Locked is locked, f"expected Locked={locked}, got {state.Locked}")


def check_fully_reversed(ledger, source: str) -> None:
    """QueryCharges shows every charge refunded by refunds from `source`."""
    check(ledger.TotalCharged > 0, "the ledger should show the charges")
    check(ledger.TotalCharged == ledger.TotalRefunded,
          f"TotalCharged {ledger.TotalCharged} != TotalRefunded {ledger.TotalRefunded}")
    refunds = entries(ledger.Refunds, "RefundRecord")
    check(refunds and all(r.Source == source for r in refunds),
          f"refunds should come from {source}, got {[r.Source for r in refunds]}")


SCENARIOS = []


def scenario(title: str):
    def register(function):
        SCENARIOS.append((title, function))
        return function
    return register


@scenario("小明 (outpatient) orders a 头颅CT but has not paid")
def unpaid_outpatient(h: Hospital):
    app = h.submit("小明", "OUTPATIENT", [HEAD_CT])
    say(f"the doctor orders 头颅CT for 小明 at CT室: {app} is NEW / 待收费")
    check(h.worklist(app) == [], "an unpaid application must not be on the PACS worklist")
    say("小明 goes to CT without paying: the clerk searches the worklist and cannot find him")
    expect_fault("ApplicationNotFound", h.pacs.ReportStatus, h.status_request(app, "REGISTERED", "ACC-X"))
    say("registering him anyway is refused: ApplicationNotFound (PACS cannot see an unpaid order)")


@scenario("小明 pays, CT registers him, the doctor can no longer cancel")
def paid_and_registered(h: Hospital):
    app = h.submit("小明", "OUTPATIENT", [HEAD_CT])
    amount = total([HEAD_CT])
    expect_fault("AmountMismatch", h.his.ConfirmPayment, h.pay_request(app, amount - 1))
    say(f"paying {amount - 1} for a {amount} application is refused: AmountMismatch")
    state = h.his.ConfirmPayment(request=h.pay_request(app, amount))
    check_state(state, "RELEASED", "待执行", locked=False)
    say(f"小明 pays {amount} at the cashier: RELEASED / 待执行")
    found = h.worklist(app)
    check(len(found) == 1 and found[0].ApplicationNo == app, "a paid application must be on the worklist")
    say(f"the CT clerk now finds him on the worklist ({found[0].Patient.Name}, {found[0].Status})")
    result = h.register(app)
    check_state(result.Application, "REGISTERED", "执行中", locked=True)
    check(bool(result.Application.AccessionNo), "a registered application should carry its AccessionNo")
    say(f"CT registers him (accession {result.Application.AccessionNo}): REGISTERED / 执行中, Locked")
    expect_fault("ApplicationLocked", h.his.CancelApplication, h.cancel_request(app))
    say("小明's headache is gone, but the doctor's cancel is refused: ApplicationLocked "
        "(no refund after the scan)")


@scenario("Retries are safe: the same MessageId never acts twice")
def retries(h: Hospital):
    app = h.submit("小明", "OUTPATIENT", [HEAD_CT])
    pay = h.pay_request(app, total([HEAD_CT]))
    first = h.his.ConfirmPayment(request=pay)
    ledger, timeline = h.charges(app), entries(h.get(app).Timeline, "StatusEvent")
    again = h.his.ConfirmPayment(request=pay)
    check(plain(again) == plain(first), f"the retried ConfirmPayment answered {again}, first {first}")
    check(len(entries(h.get(app).Timeline, "StatusEvent")) == len(timeline), "the retry added a status event")
    check(plain(h.charges(app)) == plain(ledger), "the retried ConfirmPayment changed the ledger")
    say(f"the cashier's ConfirmPayment is sent twice ({pay['MessageId']}): same answer, paid once")
    expect_fault("MessageIdReused", h.his.ConfirmPayment, {**pay, "InvoiceNo": "OTHER"})
    say("the same MessageId with another invoice number: MessageIdReused")

    register = h.status_request(app, "REGISTERED", new_id("ACC")[:20])
    first = h.pacs.ReportStatus(request=register)
    timeline = entries(h.get(app).Timeline, "StatusEvent")
    again = h.pacs.ReportStatus(request=register)
    check(plain(again) == plain(first), f"the retried ReportStatus answered {again}, first {first}")
    check(len(entries(h.get(app).Timeline, "StatusEvent")) == len(timeline), "the retry added a status event")
    say(f"PACS sends REGISTERED twice ({register['MessageId']}): same answer, one registration")
    expect_fault("MessageIdReused", h.pacs.ReportStatus, {**register, "Status": "EXAMINED"})
    say("the same MessageId reporting EXAMINED instead: MessageIdReused")


@scenario("Inpatient, charge point NURSE_SEND (CT): a cancel before registration reverses the charges")
def nurse_send_charge_point(h: Hospital):
    items = [CHEST_CT, FILM]
    app = h.submit("王大爷", "INPATIENT", items, department="CT")
    say(f"the ward doctor orders 胸部CT and 胶片×2 for 王大爷 (inpatient): {app} NEW / 待发送")
    sent = h.send(app)
    check_state(sent.Application, "RELEASED", "待执行")
    lines = entries(sent.Charges)
    check(lines, "SendInpatientOrder under NURSE_SEND should charge the items "
                 "(is the deployment's charge point for CT NURSE_SEND?)")
    check(all(line.Trigger == "NURSE_SEND" for line in lines),
          f"expected Trigger NURSE_SEND, got {[line.Trigger for line in lines]}")
    charged = sum(line.Amount for line in lines)
    check(charged == total(items), f"charged {charged}, the items total {total(items)}")
    say(f"the nurse sends the order: RELEASED, {len(lines)} lines charged to the account "
        f"({charged}, NURSE_SEND)")
    cancelled = h.his.CancelApplication(request=h.cancel_request(app))
    check_state(cancelled.Application, "CANCELLED", "已撤销")
    reversed_ids = {line.ChargeId for line in entries(cancelled.ReversedCharges)}
    charged_ids = {line.ChargeId for line in lines}
    check(reversed_ids == charged_ids, f"reversed charges {sorted(reversed_ids)}, charged {sorted(charged_ids)}")
    check_fully_reversed(h.charges(app), "HIS_CANCEL")
    say("the doctor cancels before registration: CANCELLED, every charge reversed (charged == refunded)")


@scenario("Inpatient, charge point PACS_REGISTER: registration charges, its cancellation reverses")
def pacs_register_charge_point(h: Hospital):
    department = h.register_department
    app = h.submit("张阿姨", "INPATIENT", [HEAD_MR], department=department)
    say(f"头颅MR for 张阿姨 (inpatient) at department {department}: {app}")
    sent = h.send(app)
    check_state(sent.Application, "RELEASED", "待执行")
    check(entries(sent.Charges) == [],
          f"SendInpatientOrder charged at department {department}: is the deployment started with "
          f"HIS_PACS_CHARGE_POINT_BY_DEPARTMENT={department}=PACS_REGISTER?")
    say("the nurse sends the order: RELEASED, nothing charged yet")
    registered = h.register(app)
    check_state(registered.Application, "REGISTERED", "执行中", locked=True)
    lines = entries(registered.Charges)
    check(lines and all(line.Trigger == "PACS_REGISTER" for line in lines),
          f"REGISTERED should charge with Trigger PACS_REGISTER, got {[line.Trigger for line in lines]}")
    check(sum(line.Amount for line in lines) == total([HEAD_MR]), "registration charged the wrong amount")
    say(f"PACS registers her: {len(lines)} line charged ({lines[0].Amount}, PACS_REGISTER)")
    undone = h.pacs.ReportStatus(request=h.status_request(app, "REGISTRATION_CANCELLED"))
    check_state(undone.Application, "RELEASED", "待执行", locked=False)
    check_fully_reversed(h.charges(app), "REGISTRATION_CANCELLED")
    say("PACS cancels the registration: back to RELEASED, the charge reversed (charged == refunded)")


@scenario("小李 fell when the CT failed; the director waives the fee: PACS refunds a registered exam")
def pacs_refund_after_registration(h: Hospital):
    app = h.submit("小李", "INPATIENT", [CHEST_CT], department="CT")
    lines = entries(h.send(app).Charges)
    check(lines, "SendInpatientOrder should charge 小李's CT (NURSE_SEND at CT)")
    h.register(app)
    say(f"小李 (inpatient) is charged {lines[0].Amount} when the nurse sends the order, and CT registers him")
    expect_fault("ApplicationLocked", h.his.CancelApplication, h.cancel_request(app))
    say("the machine fails and 小李 falls; HIS cannot cancel a registered exam: ApplicationLocked")
    result = h.refund(app, [(line.ChargeId, line.Quantity) for line in lines], "CT设备故障致患者摔倒，主任批准免收")
    refunds = entries(result.Refunds, "RefundRecord")
    check(len(refunds) == len(lines) and all(r.Source == "PACS" for r in refunds),
          f"expected {len(lines)} PACS refund(s), got {[(r.ChargeId, r.Source) for r in refunds]}")
    check_fully_reversed(h.charges(app), "PACS")
    check(h.get(app).Application.Status == "REGISTERED", "a PACS refund must not change the status")
    say("PACS refunds the charge on the director's word: accepted (PACS refunds skip the status check)")


@scenario("The 留置针 case: CT refunds only the needle of a CT增强 package")
def package_component_refund(h: Hospital):
    app = h.submit("赵先生", "INPATIENT", [ENHANCED_CT_PACKAGE], department="CT")
    say(f"CT增强组套 (CT增强 400.00 + 留置针 35.00) for 赵先生 (inpatient): {app}")
    lines = entries(h.send(app).Charges)
    check(len(lines) == 2, f"the package should be charged as its 2 components, got {len(lines)} lines")
    check(all(line.PackageItemCode == ENHANCED_CT_PACKAGE["ItemCode"] for line in lines),
          f"component lines should carry PackageItemCode, got {[line.PackageItemCode for line in lines]}")
    say(f"the nurse sends it: 2 component lines charged, each with PackageItemCode {lines[0].PackageItemCode}")
    h.register(app)
    needle = next(line for line in lines if line.ItemCode == NEEDLE["ItemCode"])
    h.refund(app, [(needle.ChargeId, needle.Quantity)], "留置针已由病区护士放置，由病区计费")
    say("the ward nurse placed the needle herself: CT refunds the 留置针 line only")
    ledger = h.charges(app)
    by_code = {line.ItemCode: line for line in entries(ledger.Charges)}
    check(by_code[NEEDLE["ItemCode"]].RefundedQuantity == needle.Quantity
          and by_code[NEEDLE["ItemCode"]].RefundedAmount == needle.Amount, "the 留置针 line is not refunded")
    check(by_code["CT003"].RefundedQuantity == 0, "the CT增强 line must stay charged")
    check((ledger.TotalCharged, ledger.TotalRefunded) == (Decimal("435.00"), Decimal("35.00")),
          f"totals: charged {ledger.TotalCharged}, refunded {ledger.TotalRefunded}")
    say(f"the ledger: charged {ledger.TotalCharged}, refunded {ledger.TotalRefunded}; CT增强 still charged")
    expect_fault("RefundExceedsCharge", h.pacs.Refund, {
        "MessageId": new_id("QA-M-"), "RefundRequestNo": new_id("QA-R-"), "ApplicationNo": app,
        "Lines": {"RefundLine": [{"ChargeId": needle.ChargeId, "Quantity": needle.Quantity}]},
        "Reason": "重复退费", "Operator": DIRECTOR, "RequestedAt": now()})
    say("refunding the needle a second time is refused: RefundExceedsCharge")


def main(argv=None) -> int:
    parser = base_parser("Play the seed's HIS <-> PACS cases against a deployment and check them.")
    parser.add_argument("--register-department", default="MR",
                        help="executing department configured with charge point PACS_REGISTER (default MR)")
    args = parser.parse_args(argv)
    hospital = Hospital(args.url, args.wsdl_dir, args.register_department)
    failed = []
    for letter, (title, play) in zip("abcdefghijklmnopqrstuvwxyz", SCENARIOS):
        print(f"{letter}. {title}")
        try:
            play(hospital)
        except Failed as error:
            failed.append(letter)
            print(f"   FAILED: {error}")
        except Fault as fault:
            failed.append(letter)
            detail = fault_detail(fault)
            print(f"   FAILED: unexpected fault {fault_code(fault)}: {detail.get('Message', fault.message)}")
        except (ZeepError, OSError) as error:
            print(f"   cannot talk to {args.url}: {type(error).__name__}: {error}")
            return 2
        else:
            print("   ok")
    passed = len(SCENARIOS) - len(failed)
    if failed:
        print(f"{passed} of {len(SCENARIOS)} scenarios passed; FAILED: {', '.join(failed)}")
        return 1
    print(f"{passed} scenarios passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
