#!/usr/bin/env python3
"""PACS simulator: calls PacsService of a his-pacs-ws deployment, as a PACS/RIS would.

Every call carries a WS-Security UsernameToken of a PACS system (`his-pacs-ws systems add NAME
--role PACS` on the server). Give it in the environment rather than on the command line:
  export HIS_PACS_PACS_USER=pacs1 HIS_PACS_PACS_PASSWORD='...'
(--password-type text sends it as PasswordText; --no-auth only for a demo server started with
HIS_PACS_AUTH=off.)

Examples:
  simulate_pacs.py worklist --department CT
  simulate_pacs.py status A123 REGISTERED --accession-no ACC001
  simulate_pacs.py charge A123 --item FILM01:胶片:10.00:2
  simulate_pacs.py refund A123 --line 12:1 --reason 设备故障，主任批准免费
  simulate_pacs.py report A123 FINAL --no-positive --report-no R1 --impression 腔隙性脑梗死 --image-url http://pacs/wado?1
  simulate_pacs.py critical A123 --finding 左侧大量气胸   # then: critical-values --application-no A123
  simulate_pacs.py emr P001 --scope ALL_VISITS --include-orders
  simulate_pacs.py emr P001 --application-no A123   # the patient id comes first, also here
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _client import (
    announce,
    base_parser,
    call,
    connect,
    credentials_parser,
    critical_values_parser,
    critical_values_request,
    datetime_arg,
    decimal_arg,
    deployment_parser,
    item_arg,
    login,
    message_id_parser,
    new_id,
    now,
    staff_arg,
)

STATUSES = ("NEW", "RELEASED", "SCHEDULED", "REGISTERED", "EXAMINED", "REPORTED", "VERIFIED", "CANCELLED")
EVENTS = ("SCHEDULED", "REGISTERED", "EXAMINED", "SCHEDULE_CANCELLED", "REGISTRATION_CANCELLED")
RESULT_STATUSES = ("PRELIMINARY", "FINAL", "CORRECTED", "WITHDRAWN")
CLERK = "R001:登记员"
RADIOLOGIST = "D201:张医师"
DIRECTOR = "D900:放射科主任"


def refund_line_arg(text: str) -> dict:
    """`CHARGE_ID:QUANTITY` as a RefundLine."""
    charge_id, sep, quantity = text.partition(":")
    if not sep or not charge_id:
        raise argparse.ArgumentTypeError(f"expected CHARGE_ID:QUANTITY, got {text!r}")
    return {"ChargeId": charge_id, "Quantity": decimal_arg(quantity)}


def build_parser():
    parser = base_parser("Simulate a PACS/RIS calling PacsService.", credentials_parser("pacs"))
    commands = parser.add_subparsers(dest="command", required=True)
    where = [deployment_parser(with_defaults=False), credentials_parser("pacs", with_defaults=False)]
    state = [*where, message_id_parser()]

    worklist = commands.add_parser("worklist", parents=where,
                                   help="QueryApplications (the registration worklist)")
    worklist.add_argument("--department", help="executing department code")
    worklist.add_argument("--modality")
    worklist.add_argument("--patient-id")
    worklist.add_argument("--patient-name")
    worklist.add_argument("--application-no")
    worklist.add_argument("--accession-no")
    worklist.add_argument("--status", action="append", choices=STATUSES, default=[],
                          help="repeatable (server default: RELEASED and SCHEDULED)")
    worklist.add_argument("--page-size", type=int)
    worklist.add_argument("--page-token")
    worklist.add_argument("--full", action="store_true", help="print every field, not one line each")

    status = commands.add_parser("status", parents=state, help="ReportStatus (registration desk, scanner)")
    status.add_argument("application_no")
    status.add_argument("status", choices=EVENTS)
    status.add_argument("--accession-no", help="required with REGISTERED")
    status.add_argument("--operator", type=staff_arg, default=staff_arg(CLERK), metavar="CODE:NAME")
    status.add_argument("--room")
    status.add_argument("--note")
    status.add_argument("--occurred-at", type=datetime_arg, default=None, help="ISO date-time (default now)")

    charge = commands.add_parser("charge", parents=state, help="Charge (PACS adds inpatient charges)")
    charge.add_argument("application_no")
    charge.add_argument("--item", type=item_arg, action="append", required=True,
                        metavar="CODE:NAME:PRICE[:QTY]", help="repeatable")
    charge.add_argument("--charge-request-no", help="default: generated")
    charge.add_argument("--operator", type=staff_arg, default=staff_arg(CLERK), metavar="CODE:NAME")
    charge.add_argument("--charged-at", type=datetime_arg, default=None, help="ISO date-time (default now)")

    refund = commands.add_parser("refund", parents=state, help="Refund (PACS refunds inpatient charge lines)")
    refund.add_argument("application_no")
    refund.add_argument("--line", type=refund_line_arg, action="append", required=True,
                        metavar="CHARGE_ID:QTY", help="repeatable")
    refund.add_argument("--refund-request-no", help="default: generated")
    refund.add_argument("--reason", default="检查未执行")
    refund.add_argument("--operator", type=staff_arg, default=staff_arg(CLERK), metavar="CODE:NAME")
    refund.add_argument("--requested-at", type=datetime_arg, default=None, help="ISO date-time (default now)")

    report = commands.add_parser("report", parents=state, help="PushReport (the report and its image links)")
    report.add_argument("application_no")
    report.add_argument("result_status", choices=RESULT_STATUSES)
    report.add_argument("--report-no", help="default: generated; repeat it to send the next version")
    report.add_argument("--doctor", type=staff_arg, default=staff_arg(RADIOLOGIST), metavar="CODE:NAME",
                        help="reporting doctor")
    report.add_argument("--verifier", type=staff_arg, default=staff_arg(DIRECTOR), metavar="CODE:NAME",
                        help="verifying doctor, sent with FINAL and CORRECTED")
    report.add_argument("--reported-at", type=datetime_arg, default=None, help="ISO date-time (default now)")
    report.add_argument("--verified-at", type=datetime_arg, default=None, help="default: the reported time")
    report.add_argument("--accession-no")
    report.add_argument("--findings", default="脑实质内未见异常密度影，脑室系统未见扩大，中线结构居中。")
    report.add_argument("--impression", default="头颅CT平扫未见明显异常")
    report.add_argument("--positive", action=argparse.BooleanOptionalAction, help="positive finding (阳性), or --no-positive (阴性); FINAL and CORRECTED need one")
    report.add_argument("--study-uid", help="StudyInstanceUid")
    report.add_argument("--viewer-url")
    report.add_argument("--image-url", action="append", default=[], help="repeatable")
    report.add_argument("--pdf-url")

    critical = commands.add_parser("critical", parents=state,
                                   help="RaiseCriticalValue (危急值, after a second radiologist's check)")
    critical.add_argument("application_no")
    critical.add_argument("--finding", required=True)
    critical.add_argument("--critical-value-no", help="default: generated")
    critical.add_argument("--reported-by", type=staff_arg, default=staff_arg(RADIOLOGIST), metavar="CODE:NAME")
    critical.add_argument("--reviewed-by", type=staff_arg, default=staff_arg(DIRECTOR), metavar="CODE:NAME",
                          help="the radiologist who double-checked it")
    critical.add_argument("--reported-at", type=datetime_arg, default=None, help="ISO date-time (default now)")
    critical.add_argument("--report-no")
    critical.add_argument("--contact-phone")

    revoke = commands.add_parser("revoke-critical", parents=state,
                                 help="RevokeCriticalValue (a value raised in error, before it is handled)")
    revoke.add_argument("critical_value_no")
    revoke.add_argument("--reason", default="复核后排除，误报")
    revoke.add_argument("--operator", type=staff_arg, default=staff_arg(RADIOLOGIST), metavar="CODE:NAME")

    commands.add_parser("critical-values", parents=[*where, critical_values_parser()],
                        help="QueryCriticalValues (every step of the loop: who and when)")

    emr = commands.add_parser("emr", parents=where, help="QueryEmr PATIENT_ID (the patient's records, while reporting)",
                              usage="%(prog)s PATIENT_ID [--application-no NO | --visit-no NO] [options]",
                              description="QueryEmr always names the patient: PATIENT_ID comes first, also with "
                                          "--application-no or --visit-no, which only pick the current visit.")
    emr.add_argument("patient_id", metavar="PATIENT_ID", help="the patient's HIS 登记号 (required)")
    emr.add_argument("--scope", choices=("CURRENT_VISIT", "ALL_VISITS"), help="server default CURRENT_VISIT")
    emr.add_argument("--visit-no", help="anchors the current visit (with PATIENT_ID)")
    emr.add_argument("--application-no", help="anchors the current visit (with PATIENT_ID)")
    emr.add_argument("--include-orders", action="store_true")
    emr.add_argument("--document-type", action="append", default=[], help="e.g. 入院记录; repeatable")
    emr.add_argument("--from", dest="from_", type=datetime_arg, help="ISO date-time")
    emr.add_argument("--to", type=datetime_arg, help="ISO date-time")
    emr.add_argument("--max-documents", type=int)
    emr.add_argument("--requested-by", type=staff_arg, default=staff_arg(RADIOLOGIST), metavar="CODE:NAME",
                     help="who reads the record (recorded)")

    ping = commands.add_parser("ping", parents=where, help="Ping")
    ping.add_argument("--echo")
    return parser


def worklist_request(args) -> dict:
    request = {"ExecutingDepartmentCode": args.department, "Modality": args.modality,
               "PatientId": args.patient_id, "PatientName": args.patient_name,
               "ApplicationNo": args.application_no, "AccessionNo": args.accession_no,
               "PageSize": args.page_size, "PageToken": args.page_token}
    if args.status:
        request["Statuses"] = {"Status": args.status}
    return {k: v for k, v in request.items() if v is not None}


def request_for(args) -> dict | None:
    if args.command == "worklist":
        return worklist_request(args)
    if args.command == "status":
        request = {"ApplicationNo": args.application_no, "Status": args.status,
                   "OccurredAt": args.occurred_at or now(), "Operator": args.operator,
                   "AccessionNo": args.accession_no, "Room": args.room, "Note": args.note}
        return {k: v for k, v in request.items() if v is not None}
    if args.command == "charge":
        return {"ChargeRequestNo": args.charge_request_no or new_id("C"),
                "ApplicationNo": args.application_no, "Items": {"ApplicationItem": args.item}, "Operator": args.operator,
                "ChargedAt": args.charged_at or now()}
    if args.command == "refund":
        return {"RefundRequestNo": args.refund_request_no or new_id("R"),
                "ApplicationNo": args.application_no, "Lines": {"RefundLine": args.line}, "Reason": args.reason, "Operator": args.operator,
                "RequestedAt": args.requested_at or now()}
    if args.command == "report":
        return report_request(args)
    if args.command == "critical":
        request = {"CriticalValueNo": args.critical_value_no or new_id("CV"), "ApplicationNo": args.application_no,
                   "Finding": args.finding, "ReportedBy": args.reported_by, "ReportedAt": args.reported_at or now(),
                   "ReviewedBy": args.reviewed_by, "ReportNo": args.report_no, "ContactPhone": args.contact_phone}
        return {k: v for k, v in request.items() if v is not None}
    if args.command == "revoke-critical":
        return {"CriticalValueNo": args.critical_value_no, "Reason": args.reason, "Operator": args.operator}
    if args.command == "critical-values":
        return critical_values_request(args)
    if args.command == "emr":
        return emr_request(args)
    return {"Echo": args.echo} if args.echo else None


def report_request(args) -> dict:
    reported_at = args.reported_at or now()
    request = {"ApplicationNo": args.application_no, "ReportNo": args.report_no or new_id("RPT"),
               "ResultStatus": args.result_status, "ReportingDoctor": args.doctor, "ReportedAt": reported_at,
               "AccessionNo": args.accession_no, "Findings": args.findings, "Impression": args.impression,
               "Positive": args.positive, "StudyInstanceUid": args.study_uid, "ViewerUrl": args.viewer_url,
               "ImageUrls": {"ImageUrl": args.image_url} if args.image_url else None, "PdfUrl": args.pdf_url}
    if args.result_status in ("FINAL", "CORRECTED"):
        request.update(VerifyingDoctor=args.verifier, VerifiedAt=args.verified_at or reported_at)
    return {k: v for k, v in request.items() if v is not None}


def emr_request(args) -> dict:
    request = {"PatientId": args.patient_id, "Scope": args.scope, "VisitNo": args.visit_no,
               "ApplicationNo": args.application_no, "IncludeOrders": True if args.include_orders else None,
               "DocumentTypes": {"DocumentType": args.document_type} if args.document_type else None,
               "From": args.from_, "To": args.to, "MaxDocuments": args.max_documents,
               "RequestedBy": args.requested_by}
    return {k: v for k, v in request.items() if v is not None}


def print_worklist(result) -> None:
    """One line per application: what a registration clerk scans for."""
    applications = result.Applications.ApplicationDetail if result.Applications else []
    for app in applications:
        items = "、".join(f"{i.ItemName}×{i.Quantity.normalize():f}" for i in app.Items.ApplicationItem)
        accession = f"  accession {app.AccessionNo}" if app.AccessionNo else ""
        print(f"{app.ApplicationNo}  {app.Status}/{app.HisStatus}  {app.Patient.Name}({app.Patient.PatientId})"
              f"  {app.Visit.PatientType}  {app.ExecutingDepartmentCode}  {items}{accession}")
    print(f"{len(applications)} application(s)")
    if result.NextPageToken:
        print(f"more: --page-token {result.NextPageToken}")


# What a retry must repeat besides --message-id: the values generated when not given.
RETRY_FLAGS = {
    "status": {"--occurred-at": ("OccurredAt",)},
    "charge": {"--charge-request-no": ("ChargeRequestNo",), "--charged-at": ("ChargedAt",)},
    "refund": {"--refund-request-no": ("RefundRequestNo",), "--requested-at": ("RequestedAt",)},
    "report": {"--report-no": ("ReportNo",), "--reported-at": ("ReportedAt",)},
    "critical": {"--critical-value-no": ("CriticalValueNo",), "--reported-at": ("ReportedAt",)},
    "revoke-critical": {},
}
OPERATIONS = {"worklist": "QueryApplications", "status": "ReportStatus", "charge": "Charge",
              "refund": "Refund", "report": "PushReport", "critical": "RaiseCriticalValue",
              "revoke-critical": "RevokeCriticalValue", "critical-values": "QueryCriticalValues",
              "emr": "QueryEmr", "ping": "Ping"}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    [wsse] = login(args, "pacs")
    request = request_for(args)
    if args.command in RETRY_FLAGS:
        request = {"MessageId": args.message_id or new_id("M"), **request}
        announce(request, RETRY_FLAGS[args.command])
    pacs = connect("pacs", args.url, args.wsdl_dir, wsse)
    operation = getattr(pacs, OPERATIONS[args.command])
    if args.command == "worklist" and not args.full:
        return call(operation, request, printer=print_worklist)
    return call(operation, request)


if __name__ == "__main__":
    sys.exit(main())
