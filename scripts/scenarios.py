#!/usr/bin/env python3
"""Plays the seed article's HIS <-> PACS cases against a running deployment, says what
happened, and checks every expectation. Exit status 0 only if every scenario passed.

Cases a-g are the application, status and billing interfaces; h-m the clinical ones:
reports and images, critical values (危急值) and the EMR; n the WS-Security rules; o-q push
mode, with `--push HIS_PORT,PACS_PORT`: the script hosts a HIS and a PACS callback service
on those ports, and hospital IT points the two systems' callbacks at them first:
  his-pacs-ws systems set-callback $HIS_PACS_HIS_USER --url http://THIS-MACHINE:8101/
  his-pacs-ws systems set-callback $HIS_PACS_PACS_USER --url http://THIS-MACHINE:8102/

Calls are made as a HIS and a PACS system registered on the deployment (`his-pacs-ws systems
add`); give their names and passwords in HIS_PACS_HIS_USER, HIS_PACS_HIS_PASSWORD,
HIS_PACS_PACS_USER and HIS_PACS_PACS_PASSWORD rather than on the command line.

Every run uses fresh application numbers, patient ids and MessageIds, so it can be repeated
against the same deployment. Scenario e needs the deployment started with
HIS_PACS_CHARGE_POINT_BY_DEPARTMENT=<register department>=PACS_REGISTER (default MR).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _client import (
    PASSWORD_TYPES,
    base_parser,
    connect,
    credentials_parser,
    fault_code,
    fault_detail,
    login,
    new_id,
    now,
    plain,
    token,
)
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault

DOCTOR = {"Code": "D001", "Name": "王医生"}
NURSE = {"Code": "N001", "Name": "李护士"}
CLERK = {"Code": "R001", "Name": "登记员"}
DIRECTOR = {"Code": "D900", "Name": "放射科主任"}
RADIOLOGIST = {"Code": "D201", "Name": "张医师"}


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

FINDINGS = "左侧基底节区见小片状低密度影，边界欠清；脑室系统未见扩大，中线结构居中。"
IMPRESSION = "左侧基底节区腔隙性脑梗死"


def image_links(report_no: str) -> dict:
    """What PACS sends with a final report: the study, a viewer, two images and the PDF."""
    uid = f"1.2.156.112605.{int(new_id()[:12], 16)}"
    base = "http://pacs.example/"
    return {"StudyInstanceUid": uid, "ViewerUrl": f"{base}viewer?study={uid}",
            "ImageUrls": {"ImageUrl": [f"{base}wado?study={uid}&image={n}" for n in (1, 2)]},
            "PdfUrl": f"{base}reports/{report_no}.pdf"}


def document(document_type, title, content, recorded_at) -> dict:
    return {"DocumentId": new_id("QA-DOC-"), "DocumentType": document_type, "Title": title,
            "Content": content, "AuthorName": DOCTOR["Name"], "RecordedAt": recorded_at}


def order(content, ordered_at) -> dict:
    return {"OrderNo": new_id("QA-O-"), "OrderType": "LONG_TERM", "Content": content, "OrderedAt": ordered_at}


class Failed(Exception):
    """The server did not behave as the contract says."""


class Skipped(Exception):
    """The scenario cannot be played against this deployment."""


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

    def __init__(self, url: str, wsdl_dir: str, register_department: str, his_login=None, pacs_login=None):
        self.url, self.wsdl_dir = url, wsdl_dir
        self.his_login, self.pacs_login = his_login, pacs_login
        self.his = self.connect("his", his_login)
        self.pacs = self.connect("pacs", pacs_login)
        self.register_department = register_department

    def connect(self, name, wsse):
        """Another proxy of the `his` or `pacs` service, calling with the UsernameToken `wsse`."""
        return connect(name, self.url, self.wsdl_dir, wsse)

    def submit(self, name, patient_type, items, department="CT", patient_id=None, visit=None):
        """Returns the ApplicationNo of a new application; `visit` overrides Visit fields."""
        application_no = new_id("QA-A-")
        state = self.his.SubmitApplication(request={
            "MessageId": new_id("QA-M-"),
            "ApplicationNo": application_no,
            "Patient": {"PatientId": patient_id or new_id("QA-P-"), "Name": name, "Sex": "M"},
            "Visit": {"VisitNo": new_id("QA-V-"), "PatientType": patient_type, "VisitAt": now(), **(visit or {})},
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

    def examined(self, name, **submit_options):
        """An outpatient's 头颅CT, paid, registered and scanned: ready to be reported."""
        app = self.submit(name, "OUTPATIENT", [HEAD_CT], **submit_options)
        self.his.ConfirmPayment(request=self.pay_request(app, total([HEAD_CT])))
        self.register(app)
        check_state(self.pacs.ReportStatus(request=self.status_request(app, "EXAMINED")).Application,
                    "EXAMINED", "执行中")
        return app

    def report_request(self, application_no, report_no, result_status, impression, **fields):
        request = {"MessageId": new_id("QA-M-"), "ApplicationNo": application_no, "ReportNo": report_no,
                   "ResultStatus": result_status, "ReportingDoctor": RADIOLOGIST, "ReportedAt": now(),
                   "Findings": FINDINGS, "Impression": impression, **fields}
        if result_status in ("FINAL", "CORRECTED"):
            request.update(VerifyingDoctor=DIRECTOR, VerifiedAt=now())
            request.setdefault("Positive", True)
        return request

    def push_report(self, *args, **fields):
        return self.pacs.PushReport(request=self.report_request(*args, **fields))

    def reported(self, name, **submit_options):
        """An examined application with a preliminary and then a final report (version 2):
        (ApplicationNo, ReportNo, the image links)."""
        app, report_no = self.examined(name, **submit_options), new_id("QA-RPT-")
        links = image_links(report_no)
        self.push_report(app, report_no, "PRELIMINARY", IMPRESSION)
        result = self.push_report(app, report_no, "FINAL", IMPRESSION, **links)
        check_state(result.Application, "VERIFIED", "已完成")
        check(result.ReportVersion == 2,
              f"the final after a preliminary should be version 2, got {result.ReportVersion}")
        return app, report_no, links

    def reports(self, **query):
        """HIS QueryReports: its Report entries (zeep returns the list wrapper itself)."""
        return entries(self.his.QueryReports(request=query), "Report")

    def raise_critical(self, application_no, finding, reported_at):
        return self.pacs.RaiseCriticalValue(request={
            "MessageId": new_id("QA-M-"), "CriticalValueNo": new_id("QA-CV-"), "ApplicationNo": application_no,
            "Finding": finding, "ReportedBy": RADIOLOGIST, "ReviewedBy": DIRECTOR, "ReportedAt": reported_at,
            "ContactPhone": "8801"})

    def critical_values(self, **query):
        """PACS QueryCriticalValues: its CriticalValue entries."""
        return entries(self.pacs.QueryCriticalValues(request=query), "CriticalValue")

    def emr(self, **query):
        """PACS QueryEmr: its visits."""
        return entries(self.pacs.QueryEmr(request=query).Visits, "EmrVisit")

    def publish_emr(self, patient_id, visit, documents, orders=()):
        request = {"MessageId": new_id("QA-M-"), "PatientId": patient_id, "Visit": visit,
                   "Documents": {"EmrDocument": list(documents)}}
        if orders:
            request["Orders"] = {"EmrOrder": list(orders)}
        return self.his.PublishEmr(request=request)


def expect_fault(code: str, operation, request: dict | None = None) -> dict:
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


def check_report(report, report_no, version, result_status, impression, links=None) -> None:
    """A Report as HIS reads it; with `links`, also the verification and the image links."""
    check((report.ReportNo, report.Version, report.ResultStatus) == (report_no, version, result_status),
          f"expected report {report_no} v{version} {result_status}, "
          f"got {report.ReportNo} v{report.Version} {report.ResultStatus}")
    check(report.Impression == impression, f"expected impression {impression!r}, got {report.Impression!r}")
    if links is None:
        return
    check(report.VerifyingDoctor is not None and report.VerifyingDoctor.Code == DIRECTOR["Code"]
          and report.VerifiedAt is not None, "the final report should name its verifying doctor and time")
    sent = {key: links[key] for key in ("StudyInstanceUid", "ViewerUrl", "PdfUrl")}
    got = {key: getattr(report, key) for key in sent}
    check(got == sent, f"expected {sent}, got {got}")
    images = entries(report.ImageUrls, "ImageUrl")
    sent_images = links["ImageUrls"]["ImageUrl"]
    check(images == sent_images, f"expected image links {sent_images}, got {images}")


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


@scenario("The report and images reach the clinician: preliminary, then the audited final")
def report_reaches_clinician(h: Hospital):
    app, report_no = h.examined("小明"), new_id("QA-RPT-")
    say(f"小明 paid, was registered and scanned: {app} EXAMINED / 执行中")
    result = h.push_report(app, report_no, "PRELIMINARY", IMPRESSION)
    check_state(result.Application, "REPORTED", "执行中")
    check(result.ReportVersion == 1, f"the first report should be version 1, got {result.ReportVersion}")
    check(h.reports(ApplicationNo=app) == [], "HIS should not show a preliminary report unless asked")
    preliminary = h.reports(ApplicationNo=app, IncludePreliminary=True)
    check(len(preliminary) == 1, f"IncludePreliminary=true should show 1 report, got {len(preliminary)}")
    check_report(preliminary[0], report_no, 1, "PRELIMINARY", IMPRESSION)
    say(f"{RADIOLOGIST['Name']} writes the preliminary report {report_no}: REPORTED / 执行中, version 1; "
        "HIS shows it only with IncludePreliminary=true")
    links = image_links(report_no)
    result = h.push_report(app, report_no, "FINAL", IMPRESSION, **links)
    check_state(result.Application, "VERIFIED", "已完成")
    check(result.ReportVersion == 2, f"the final should be version 2, got {result.ReportVersion}")
    say(f"{DIRECTOR['Name']} audits it: FINAL, VERIFIED / 已完成, version 2, "
        f"with the study, a viewer link, {len(links['ImageUrls']['ImageUrl'])} images and a PDF")
    found = h.reports(ApplicationNo=app)
    check(len(found) == 1, f"QueryReports should show 1 report, got {len(found)}")
    check_report(found[0], report_no, 2, "FINAL", IMPRESSION, links)
    say(f"HIS QueryReports: the final report, verified by {found[0].VerifyingDoctor.Name} at "
        f"{found[0].VerifiedAt:%H:%M}, impression {found[0].Impression}, with its viewer and image links")
    shown = entries(h.get(app).Reports, "Report")
    check(len(shown) == 1, f"GetApplication should show 1 report, got {len(shown)}")
    check_report(shown[0], report_no, 2, "FINAL", IMPRESSION, links)
    say("GetApplication shows the same final report beside the application")


@scenario("A report corrected after its audit; a second FINAL refused; the audit withdrawn (取消审核)")
def report_corrected_and_withdrawn(h: Hospital):
    app, report_no, links = h.reported("王女士")
    say(f"王女士's 头颅CT {app} has its final report {report_no} (version 2)")
    corrected = "左侧基底节区腔隙性脑梗死；右侧上颌窦炎"
    result = h.push_report(app, report_no, "CORRECTED", corrected, **links)
    check_state(result.Application, "VERIFIED", "已完成")
    check(result.ReportVersion == 3, f"the correction should be version 3, got {result.ReportVersion}")
    say("the radiologist missed the sinusitis; PACS sends CORRECTED: version 3, still VERIFIED / 已完成")
    found = h.reports(ApplicationNo=app)
    check(len(found) == 1, f"QueryReports should show only the latest version, got {len(found)} reports")
    check_report(found[0], report_no, 3, "CORRECTED", corrected, links)
    say(f"HIS QueryReports shows version 3 only, with the corrected impression: {corrected}")
    expect_fault("InvalidTransition", h.pacs.PushReport, h.report_request(app, report_no, "FINAL", corrected))
    say("PACS sends another FINAL for the same report: refused, InvalidTransition (changes come as CORRECTED)")
    result = h.push_report(app, report_no, "WITHDRAWN", corrected)
    check_state(result.Application, "EXAMINED", "执行中")
    check(h.reports(ApplicationNo=app) == [], "a withdrawn report must no longer be shown to HIS")
    say(f"PACS withdraws the audit (取消审核, version {result.ReportVersion}): back to EXAMINED / 执行中, "
        "and HIS shows no report for it")


@scenario("The returning patient: the clinician sees the earlier report with the new exam")
def returning_patient(h: Hospital):
    patient = new_id("QA-P-")
    first, report_no, _ = h.reported("李大爷", patient_id=patient)
    say(f"李大爷 ({patient}) had a 头颅CT: {first}, final report {report_no}")
    second = h.submit("李大爷", "OUTPATIENT", [HEAD_CT], patient_id=patient)
    h.his.ConfirmPayment(request=h.pay_request(second, total([HEAD_CT])))
    say(f"months later he comes back; a new 头颅CT is ordered and paid: {second}")
    found = h.reports(ApplicationNo=second)
    check([(r.ApplicationNo, r.ReportNo) for r in found] == [(first, report_no)],
          f"QueryReports should show the earlier report {report_no} of {first}, "
          f"got {[(r.ApplicationNo, r.ReportNo) for r in found]}")
    say(f"HIS QueryReports for {second} (IncludePrior default true) shows the earlier report of {first}")
    check(h.reports(ApplicationNo=second, IncludePrior=False) == [],
          "with IncludePrior=false, the new application has no report yet")
    say("with IncludePrior=false it shows nothing: the new exam has no report yet")


@scenario("危急值: double-checked, received with read-back, handled; PACS sees the loop closed")
def critical_value_loop(h: Hospital):
    app = h.examined("陈先生")
    reported_at = now() - timedelta(minutes=2)
    raised = h.raise_critical(app, "左侧大量气胸，纵隔右移", reported_at)
    number = raised.CriticalValueNo
    check(raised.Status == "RAISED", f"expected RAISED, got {raised.Status}")
    check(raised.ReviewedBy is not None and raised.ReviewedBy.Code == DIRECTOR["Code"],
          "the critical value should name the second radiologist who checked it")
    check(raised.AckDeadline > raised.ReportedAt, f"AckDeadline {raised.AckDeadline} is not after ReportedAt")
    check(raised.DepartmentCode == "NK",
          f"the value should go to the patient's department NK, got {raised.DepartmentCode}")
    say(f"{RADIOLOGIST['Name']} finds 左侧大量气胸 on 陈先生's CT, {DIRECTOR['Name']} checks it: {number} RAISED "
        f"for 内科, to be received by {raised.AckDeadline:%H:%M}")
    receipt = {"MessageId": new_id("QA-M-"), "CriticalValueNo": number, "ReceivedBy": NURSE,
               "ReceivedAt": reported_at + timedelta(minutes=1), "ReadBackConfirmed": False}
    expect_fault("InvalidTransition", h.his.AcknowledgeCriticalValue, receipt)
    say(f"{NURSE['Name']} takes the call without reading the value back: refused, InvalidTransition "
        "(read-back is required)")
    received = h.his.AcknowledgeCriticalValue(request={**receipt, "MessageId": new_id("QA-M-"),
                                                       "ReadBackConfirmed": True})
    check(received.Status == "RECEIVED" and received.ReadBackConfirmed is True,
          f"expected RECEIVED with read-back, got {received.Status}, ReadBackConfirmed={received.ReadBackConfirmed}")
    check(received.MinutesToReceive == 1, f"expected MinutesToReceive 1.0, got {received.MinutesToReceive}")
    check(received.Overdue is False, "a value received 1 minute after it was raised should not be overdue")
    say(f"she reads it back: RECEIVED by {received.ReceivedBy.Name}, "
        f"{received.MinutesToReceive} minutes after it was raised")
    opinion = "立即请胸外科会诊，行胸腔闭式引流"
    handled = h.his.RecordCriticalValueHandling(request={
        "MessageId": new_id("QA-M-"), "CriticalValueNo": number, "HandledBy": DOCTOR,
        "HandledAt": reported_at + timedelta(minutes=2), "HandlingOpinion": opinion})
    check(handled.Status == "HANDLED", f"expected HANDLED, got {handled.Status}")
    check(handled.MinutesToHandle == 2, f"expected MinutesToHandle 2.0, got {handled.MinutesToHandle}")
    say(f"{DOCTOR['Name']} records the handling ({opinion}): HANDLED after {handled.MinutesToHandle} minutes")
    seen = h.critical_values(ApplicationNo=app)
    check([v.CriticalValueNo for v in seen] == [number],
          f"PACS should see {number}, got {[v.CriticalValueNo for v in seen]}")
    value = seen[0]
    def code(staff):
        return staff.Code if staff is not None else None

    steps = {"status": value.Status, "reported": (code(value.ReportedBy), value.ReportedAt),
             "reviewed": code(value.ReviewedBy),
             "received": (code(value.ReceivedBy), value.ReceivedAt, value.ReadBackConfirmed),
             "handled": (code(value.HandledBy), value.HandledAt, value.HandlingOpinion)}
    expected = {"status": "HANDLED", "reported": (RADIOLOGIST["Code"], reported_at), "reviewed": DIRECTOR["Code"],
                "received": (NURSE["Code"], receipt["ReceivedAt"], True),
                "handled": (DOCTOR["Code"], reported_at + timedelta(minutes=2), opinion)}
    check(steps == expected, f"PACS should see every step {expected}, got {steps}")
    say(f"PACS QueryCriticalValues sees it HANDLED: raised by {value.ReportedBy.Name} at {value.ReportedAt:%H:%M}, "
        f"checked by {value.ReviewedBy.Name}, received by {value.ReceivedBy.Name} at {value.ReceivedAt:%H:%M}, "
        f"handled by {value.HandledBy.Name} at {value.HandledAt:%H:%M}: the loop is closed")
    expect_fault("InvalidTransition", h.pacs.RevokeCriticalValue, {
        "MessageId": new_id("QA-M-"), "CriticalValueNo": number, "Reason": "误报", "Operator": RADIOLOGIST})
    say("revoking the handled value is refused: InvalidTransition")


@scenario("危急值 overdue: not received by the deadline; a value raised in error is revoked")
def critical_value_overdue(h: Hospital):
    app = h.examined("周女士")
    fresh = h.raise_critical(app, "疑似主动脉夹层", now())
    minutes = (fresh.AckDeadline - fresh.ReportedAt).total_seconds() / 60
    say(f"PACS raises {fresh.CriticalValueNo} for 周女士 just now: the deployment's receipt deadline is "
        f"{minutes:g} minutes")
    late = h.raise_critical(app, "左侧大脑中动脉供血区大面积脑梗死", now() - timedelta(minutes=minutes + 5))
    say(f"another value, {late.CriticalValueNo}, was reported {minutes + 5:g} minutes ago and nobody received it")
    overdue = h.critical_values(ApplicationNo=app, OverdueOnly=True)
    check([v.CriticalValueNo for v in overdue] == [late.CriticalValueNo],
          f"OverdueOnly should list only {late.CriticalValueNo}, got {[v.CriticalValueNo for v in overdue]}")
    check(overdue[0].Overdue is True and overdue[0].Status == "RAISED",
          f"expected RAISED and Overdue, got {overdue[0].Status}, Overdue={overdue[0].Overdue}")
    say("QueryCriticalValues(OverdueOnly=true) lists it, RAISED and Overdue=true")
    listed = {v.CriticalValueNo: v for v in h.critical_values(ApplicationNo=app)}
    check(listed.get(fresh.CriticalValueNo) is not None and listed[fresh.CriticalValueNo].Overdue is False,
          "the value raised just now should be listed and not overdue")
    say(f"{fresh.CriticalValueNo}, raised just now, is not overdue")
    revoked = h.pacs.RevokeCriticalValue(request={
        "MessageId": new_id("QA-M-"), "CriticalValueNo": fresh.CriticalValueNo,
        "Reason": "复核为运动伪影，撤回", "Operator": RADIOLOGIST})
    check(revoked.Status == "REVOKED" and revoked.RevokeReason == "复核为运动伪影，撤回" and revoked.RevokedAt,
          f"expected REVOKED with reason and time, got {revoked.Status}, {revoked.RevokeReason}, {revoked.RevokedAt}")
    say(f"on review it was a motion artefact: PACS revokes {fresh.CriticalValueNo} before receipt: "
        f"REVOKED ({revoked.RevokeReason})")
    expect_fault("InvalidTransition", h.his.AcknowledgeCriticalValue, {
        "MessageId": new_id("QA-M-"), "CriticalValueNo": fresh.CriticalValueNo, "ReceivedBy": NURSE,
        "ReceivedAt": now(), "ReadBackConfirmed": True})
    say("the ward can no longer receive the revoked value: InvalidTransition")


@scenario("EMR: the radiologist reads this visit's records, all visits', and the orders")
def emr_for_the_radiologist(h: Hospital):
    patient = new_id("QA-P-")
    clinic_at = now() - timedelta(days=30)
    clinic = {"VisitNo": new_id("QA-V-"), "PatientType": "OUTPATIENT", "VisitAt": clinic_at,
              "DepartmentName": "神经内科门诊", "Diagnosis": "头痛"}
    h.publish_emr(patient, clinic, [document("门诊病历", "神经内科门诊病历", "头痛3天，无恶心呕吐。", clinic_at)])
    say(f"a month ago 孙先生 ({patient}) saw 神经内科 as an outpatient: HIS publishes the 门诊病历")

    admitted_at = clinic_at + timedelta(days=28)
    ward = {"VisitNo": new_id("QA-V-"), "PatientType": "INPATIENT", "VisitAt": admitted_at, "WardCode": "W03",
            "WardName": "神经内科病区", "BedNo": "8", "DepartmentName": "神经内科", "Diagnosis": "急性脑梗死？"}
    app = h.submit("孙先生", "INPATIENT", [HEAD_CT], patient_id=patient, visit=ward)
    h.send(app)
    admission = document("入院记录", "入院记录", "突发右侧肢体无力2小时入院。", admitted_at + timedelta(hours=1))
    progress = document("病程记录", "首次病程记录", "考虑急性脑梗死，完善头颅CT。", admitted_at + timedelta(hours=3))
    orders = [order("头颅CT平扫", admitted_at + timedelta(hours=2)),
              order("阿司匹林肠溶片 100mg 口服 每日一次", admitted_at + timedelta(hours=2))]
    published = h.publish_emr(patient, ward, [progress, admission], orders)
    counts = (published.DocumentsStored, published.DocumentsIgnored, published.OrdersStored)
    check(counts == (2, 0, 2), f"expected 2 documents stored, 0 ignored, 2 orders; got {counts}")
    say(f"now he is admitted and a 头颅CT is ordered ({app}); HIS publishes the 病程记录 and the 入院记录 "
        "of this stay with 2 orders: 2 stored, 0 ignored, 2 orders")

    def documents(visit):
        return [(d.DocumentType, d.Version, d.Content) for d in entries(visit.Documents, "EmrDocument")]

    visits = h.emr(PatientId=patient, ApplicationNo=app)
    check([v.VisitNo for v in visits] == [ward["VisitNo"]], f"this visit only, got {[v.VisitNo for v in visits]}")
    check([d[0] for d in documents(visits[0])] == ["入院记录", "病程记录"],
          f"documents should come oldest first, got {[d[0] for d in documents(visits[0])]}")
    check(entries(visits[0].Orders, "EmrOrder") == [], "orders should come only with IncludeOrders=true")
    say("while reporting, the radiologist reads this stay (QueryEmr by ApplicationNo): 入院记录, then 病程记录; no orders")
    visits = h.emr(PatientId=patient, ApplicationNo=app, Scope="ALL_VISITS")
    check([v.VisitNo for v in visits] == [ward["VisitNo"], clinic["VisitNo"]],
          f"ALL_VISITS should list the admission, then the clinic visit; got {[v.VisitNo for v in visits]}")
    check([d[0] for d in documents(visits[1])] == ["门诊病历"], "the clinic visit should hold its 门诊病历")
    say("Scope ALL_VISITS: this admission first, then last month's clinic visit with its 门诊病历")
    visits = h.emr(PatientId=patient, ApplicationNo=app, IncludeOrders=True)
    got = sorted(o.OrderNo for o in entries(visits[0].Orders, "EmrOrder"))
    check(got == sorted(o["OrderNo"] for o in orders), f"IncludeOrders=true should add the 2 orders, got {got}")
    say("IncludeOrders=true adds the 2 orders (头颅CT平扫, 阿司匹林)")

    revised = {**progress, "Content": "考虑急性脑梗死（左侧基底节区），头颅CT已完成。", "Version": 2}
    published = h.publish_emr(patient, ward, [admission, revised])
    counts = (published.DocumentsStored, published.DocumentsIgnored)
    check(counts == (1, 1), f"expected 1 document stored and 1 ignored, got {counts}")
    now_read = documents(h.emr(PatientId=patient, ApplicationNo=app)[0])
    check(now_read == [("入院记录", 1, admission["Content"]), ("病程记录", 2, revised["Content"])],
          f"expected the 入院记录 v1 and the 病程记录 v2, got {now_read}")
    say("the doctor revises the 病程记录; HIS publishes both again: 1 stored (Version 2), 1 ignored "
        "(the 入院记录 unchanged); PACS reads version 2")
    expect_fault("PatientNotFound", h.pacs.QueryEmr, {"PatientId": new_id("QA-P-")})
    say("QueryEmr for a patient HIS never published: PatientNotFound")


@scenario("Security: every call names its system with a UsernameToken, checked as the hospital checks it")
def security(h: Hospital):
    if h.his_login is None:
        raise Skipped("--no-auth: this deployment checks no credentials")
    user, password = h.his_login.username, h.his_login.password
    expect_fault("AuthenticationFailed", h.connect("his", None).Ping)
    say("a call without a UsernameToken: AuthenticationFailed")
    for kind in PASSWORD_TYPES:
        expect_fault("AuthenticationFailed", h.connect("his", token(user, password + "x", kind)).Ping)
    say(f"{user} with a wrong password, as a digest and as text: AuthenticationFailed")
    stale = datetime.now(timezone.utc) - timedelta(minutes=10)
    expect_fault("AuthenticationFailed", h.connect("his", token(user, password, created=stale)).Ping)
    say("a digest token created 10 minutes ago (Created must be within ±5 minutes): AuthenticationFailed")
    detail = expect_fault("AccessDenied", h.connect("pacs", h.his_login).Ping)
    say(f"the HIS credentials on PacsService: AccessDenied ({detail.get('Message')})")
    expect_fault("AccessDenied", h.connect("his", h.pacs_login).Ping)
    say(f"and the PACS credentials ({h.pacs_login.username}) on HisService: AccessDenied")
    for kind in PASSWORD_TYPES:
        answer = h.connect("his", token(user, password, kind)).Ping(request={"Echo": kind})
        check(answer.Echo == kind, f"Ping with a {kind} token should echo {kind!r}, got {answer.Echo!r}")
    say(f"{user}'s password sent as PasswordText and as PasswordDigest: Ping answers both")
    nonce, created = new_id(), datetime.now(timezone.utc)
    replayed = h.connect("his", token(user, password, nonce=nonce, created=created))
    replayed.Ping()
    say(f"a digest token (nonce {nonce}, Created {created:%H:%M:%S}Z) is accepted once")
    expect_fault("AuthenticationFailed", replayed.Ping)
    say("the same token sent again, as a replay would: AuthenticationFailed")


class Receivers:
    """The HIS and PACS callback services this script hosts for the push cases."""

    def __init__(self, host: str, ports: str, wsdl_dir: str):
        from _receiver import start_in_thread

        his_port, pacs_port = (int(p) for p in ports.split(","))
        describe = lambda operation, request: operation  # noqa: E731
        self.his = start_in_thread(host, his_port, Path(wsdl_dir) / "his-callback.wsdl", "HisCallbackService", describe)
        self.pacs = start_in_thread(host, pacs_port, Path(wsdl_dir) / "pacs-callback.wsdl", "PacsCallbackService",
                                    describe)

    @staticmethod
    def wait(receiver, operation: str, match, timeout: float = 15.0):
        """The first notification of ``operation`` whose request satisfies ``match``."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry, request in list(receiver.received):
                if entry["operation"] == operation and entry["outcome"] == "applied" and match(request):
                    return request, entry
            time.sleep(0.1)
        raise Failed(f"no {operation} reached the {receiver.service} receiver within {timeout:g} s "
                     "(is the system's callback set to this script's port?)")


RECEIVERS: list = []


def receivers() -> Receivers:
    if not RECEIVERS:
        raise Skipped("push cases need --push HIS_PORT,PACS_PORT (and the callbacks set to them)")
    return RECEIVERS[0]


@scenario("Push: the paid application reaches PACS, registration reaches the HIS as 执行中, with its charges")
def push_application(h: Hospital):
    r = receivers()
    app = h.submit("小王", "INPATIENT", [HEAD_MR], department=h.register_department)
    h.send(app)
    released, entry = r.wait(r.pacs, "ApplicationReleased", lambda q: q.Application.ApplicationNo == app)
    say(f"the nurse sends 小王's 头颅MR: PACS is told at once (ApplicationReleased #{entry['sequence']}, "
        f"{released.Application.Patient.Name}, {released.Application.Items.ApplicationItem[0].ItemName})")
    h.register(app)
    changed, _ = r.wait(r.his, "ApplicationStatusChanged",
                        lambda q: q.ApplicationNo == app and q.Status == "REGISTERED")
    check(changed.HisStatus == "执行中" and changed.Locked, f"expected 执行中 and Locked, got {changed.HisStatus}")
    say(f"MR registers him: the HIS is told {changed.Status} / {changed.HisStatus}, Locked")
    posted, _ = r.wait(r.his, "ChargesPosted", lambda q: q.ApplicationNo == app)
    lines = posted.Charges.ChargeLine
    check(lines and lines[0].Trigger == "PACS_REGISTER", f"expected PACS_REGISTER charges, got {lines}")
    say(f"and the charges at registration reach the inpatient account: {lines[0].ItemName} {lines[0].Amount} "
        f"(total {posted.TotalCharged})")


@scenario("Push: the report and its images reach the HIS")
def push_report(h: Hospital):
    r = receivers()
    app = h.examined("小赵")
    report_no = new_id("QA-R-")
    h.push_report(app, report_no, "FINAL", IMPRESSION, **image_links(report_no))
    published, _ = r.wait(r.his, "ReportPublished", lambda q: q.Report.ReportNo == report_no)
    check(published.Report.Impression == IMPRESSION and len(published.Report.ImageUrls.ImageUrl) == 2,
          "the pushed report should carry the impression and both image links")
    say(f"the final report reaches the HIS by itself: {published.Report.Impression}, "
        f"{len(published.Report.ImageUrls.ImageUrl)} images, viewer {published.Report.ViewerUrl}")


@scenario("Push: a 危急值 reaches the HIS within seconds, its handling reaches PACS, an overdue one is escalated")
def push_critical(h: Hospital):
    import time

    r = receivers()
    app = h.examined("刘先生")
    started = time.monotonic()
    raised = h.raise_critical(app, "右侧大量气胸", now())
    r.wait(r.his, "CriticalValueRaised", lambda q: q.CriticalValue.CriticalValueNo == raised.CriticalValueNo,
           timeout=10)
    say(f"PACS raises {raised.CriticalValueNo}: the ward's HIS has it {time.monotonic() - started:.1f} s later")
    h.his.AcknowledgeCriticalValue(request={"MessageId": new_id("QA-M-"), "CriticalValueNo": raised.CriticalValueNo,
                                            "ReceivedBy": NURSE, "ReceivedAt": now(), "ReadBackConfirmed": True})
    h.his.RecordCriticalValueHandling(request={
        "MessageId": new_id("QA-M-"), "CriticalValueNo": raised.CriticalValueNo, "HandledBy": DOCTOR,
        "HandledAt": now(), "HandlingOpinion": "已行胸腔闭式引流"})
    handled, _ = r.wait(r.pacs, "CriticalValueUpdated", lambda q: q.CriticalValue.CriticalValueNo ==
                        raised.CriticalValueNo and q.CriticalValue.Status == "HANDLED")
    say(f"the nurse reads it back, the doctor handles it: PACS sees the loop closed "
        f"({handled.CriticalValue.HandlingOpinion})")
    minutes = (raised.AckDeadline - raised.ReportedAt).total_seconds() / 60
    late = h.raise_critical(app, "主动脉夹层", now() - timedelta(minutes=minutes + 1))
    r.wait(r.his, "CriticalValueOverdue", lambda q: q.CriticalValue.CriticalValueNo == late.CriticalValueNo,
           timeout=30)
    say(f"{late.CriticalValueNo}, unreceived past its deadline, is escalated to the HIS: CriticalValueOverdue")


def main(argv=None) -> int:
    parser = base_parser("Play the seed's HIS <-> PACS cases against a deployment and check them.",
                         credentials_parser("his", "pacs", prefixed=True))
    parser.add_argument("--register-department", default="MR",
                        help="executing department configured with charge point PACS_REGISTER (default MR)")
    parser.add_argument("--push", metavar="HIS_PORT,PACS_PORT",
                        help="play the push cases: host the HIS and PACS callback services on these ports")
    parser.add_argument("--push-host", default="0.0.0.0", help="where those listen (default all addresses)")
    args = parser.parse_args(argv)
    if args.push:
        RECEIVERS.append(Receivers(args.push_host, args.push, args.wsdl_dir))
    his_login, pacs_login = login(args, "his", "pacs", prefixed=True)
    hospital = Hospital(args.url, args.wsdl_dir, args.register_department, his_login, pacs_login)
    failed, skipped = [], []
    for letter, (title, play) in zip("abcdefghijklmnopqrstuvwxyz", SCENARIOS):
        print(f"{letter}. {title}")
        try:
            play(hospital)
        except Failed as error:
            failed.append(letter)
            print(f"   FAILED: {error}")
        except Skipped as why:
            skipped.append(letter)
            print(f"   skipped: {why}")
        except Fault as fault:
            failed.append(letter)
            detail = fault_detail(fault)
            print(f"   FAILED: unexpected fault {fault_code(fault)}: {detail.get('Message', fault.message)}")
        except (ZeepError, OSError) as error:
            print(f"   cannot talk to {args.url}: {type(error).__name__}: {error}")
            return 2
        else:
            print("   ok")
    passed = len(SCENARIOS) - len(failed) - len(skipped)
    also = f"; skipped: {', '.join(skipped)}" if skipped else ""
    if failed:
        print(f"{passed} of {len(SCENARIOS)} scenarios passed; FAILED: {', '.join(failed)}{also}")
        return 1
    print(f"{passed} scenarios passed{also}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
