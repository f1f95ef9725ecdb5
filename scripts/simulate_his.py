#!/usr/bin/env python3
"""HIS simulator: calls HisService of a his-pacs-ws deployment, as a hospital HIS would.

Every call carries a WS-Security UsernameToken of a HIS system (`his-pacs-ws systems add NAME
--role HIS` on the server). Give it in the environment rather than on the command line:
  export HIS_PACS_HIS_USER=his1 HIS_PACS_HIS_PASSWORD='...'
(--password-type text sends it as PasswordText; --no-auth only for a demo server started with
HIS_PACS_AUTH=off.)

Examples:
  simulate_his.py submit --patient-name 小明 --item-code CT001 --item-name 头颅CT平扫 --price 150
  simulate_his.py pay A123 --amount 150.00   # prints the flags that repeat it as a retry
  simulate_his.py submit --patient-type INPATIENT --item-code PKG01 --item-name CT增强组套 \\
      --component CT002:CT增强:400.00 --component ZL001:留置针:35.00
  simulate_his.py reports A123 --include-preliminary   # or: reports --patient-id P001
  simulate_his.py ack-critical CV123   # --no-read-back shows the refusal
  simulate_his.py handle-critical CV123 --opinion 已通知主管医生，立即处理
  simulate_his.py publish-emr P001 --patient-type INPATIENT --document 入院记录:入院记录:突发头痛2小时入院 \\
      --document 病程记录:首次病程记录:考虑蛛网膜下腔出血 --order 头颅CT平扫
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _client import (
    run_main,
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

PATIENT_TYPES = ("OUTPATIENT", "EMERGENCY", "INPATIENT", "PHYSICAL_EXAM")


def document_arg(text: str) -> dict:
    """`TYPE:TITLE:CONTENT` (the content may hold colons) as the start of an EmrDocument."""
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected TYPE:TITLE:CONTENT, got {text!r}")
    return {"DocumentType": parts[0], "Title": parts[1], "Content": parts[2]}


def build_parser():
    parser = base_parser("Simulate a HIS calling HisService.", credentials_parser("his"))
    commands = parser.add_subparsers(dest="command", required=True)
    where = [deployment_parser(with_defaults=False), credentials_parser("his", with_defaults=False)]
    state = [*where, message_id_parser()]

    submit = commands.add_parser("submit", parents=state, help="SubmitApplication (doctor orders an exam)")
    submit.add_argument("--patient-type", choices=PATIENT_TYPES, default="OUTPATIENT")
    submit.add_argument("--application-no", help="default: generated")
    submit.add_argument("--patient-id", help="HIS 登记号 (default: generated)")
    submit.add_argument("--patient-name", default="小明")
    submit.add_argument("--sex", choices=("M", "F", "U"), default="M")
    submit.add_argument("--visit-no", help="default: generated")
    submit.add_argument("--doctor", type=staff_arg, default=staff_arg("D001:王医生"), metavar="CODE:NAME")
    submit.add_argument("--ordering-department", default="NK", help="ordering department code")
    submit.add_argument("--ordering-department-name", default="内科")
    submit.add_argument("--department", default="CT", help="executing department code (default CT)")
    submit.add_argument("--department-name", default="CT室")
    submit.add_argument("--item-code", default="CT001")
    submit.add_argument("--item-name", default="头颅CT平扫")
    submit.add_argument("--price", type=decimal_arg,
                        help="unit price (default 150.00, or the sum of the components)")
    submit.add_argument("--quantity", type=decimal_arg, default=Decimal(1))
    submit.add_argument("--modality", default="CT")
    submit.add_argument("--body-part", default="头颅")
    submit.add_argument("--component", type=item_arg, action="append", default=[],
                        metavar="CODE:NAME:PRICE[:QTY]", help="a package (组套) line; repeatable")
    submit.add_argument("--diagnosis", default="头痛待查", help="clinical diagnosis")
    submit.add_argument("--priority", choices=("ROUTINE", "URGENT"), default="ROUTINE")
    submit.add_argument("--ordered-at", type=datetime_arg, default=None, help="ISO date-time (default now)")

    pay = commands.add_parser("pay", parents=state, help="ConfirmPayment (cashier, outpatient-like)")
    pay.add_argument("application_no")
    pay.add_argument("--amount", type=decimal_arg, required=True, help="must equal the application total")
    pay.add_argument("--invoice-no")
    pay.add_argument("--paid-at", type=datetime_arg, default=None, help="ISO date-time (default now)")

    send = commands.add_parser("send", parents=state, help="SendInpatientOrder (ward nurse)")
    send.add_argument("application_no")
    send.add_argument("--nurse", type=staff_arg, default=staff_arg("N001:李护士"), metavar="CODE:NAME")
    send.add_argument("--sent-at", type=datetime_arg, default=None, help="ISO date-time (default now)")

    cancel = commands.add_parser("cancel", parents=state, help="CancelApplication (doctor)")
    cancel.add_argument("application_no")
    cancel.add_argument("--reason", default="患者要求取消")
    cancel.add_argument("--operator", type=staff_arg, default=staff_arg("D001:王医生"), metavar="CODE:NAME")
    cancel.add_argument("--cancelled-at", type=datetime_arg, default=None, help="ISO date-time (default now)")

    get = commands.add_parser("get", parents=where, help="GetApplication")
    get.add_argument("application_no")

    charges = commands.add_parser("charges", parents=where,
                                  help="QueryCharges (by application, or patient and visit)")
    charges.add_argument("application", nargs="?", metavar="APPLICATION_NO",
                         help="like get and reports; or --patient-id [--visit-no]")
    charges.add_argument("--application-no", help=argparse.SUPPRESS)  # the earlier spelling, still taken
    charges.add_argument("--patient-id")
    charges.add_argument("--visit-no")

    reports = commands.add_parser("reports", parents=where,
                                  help="QueryReports (an application's reports with the earlier ones, or a patient's)")
    reports.add_argument("application_no", nargs="?", metavar="APPLICATION_NO", help="or --patient-id")
    reports.add_argument("--patient-id", help="all the patient's reports, instead of APPLICATION_NO")
    reports.add_argument("--no-prior", action="store_true",
                         help="only the application's own reports (IncludePrior=false)")
    reports.add_argument("--include-preliminary", action="store_true")
    reports.add_argument("--from", dest="from_", type=datetime_arg, help="ISO date-time")
    reports.add_argument("--to", type=datetime_arg, help="ISO date-time")

    ack = commands.add_parser("ack-critical", parents=state,
                              help="AcknowledgeCriticalValue (the receiver reads the 危急值 back)")
    ack.add_argument("critical_value_no")
    ack.add_argument("--received-by", type=staff_arg, default=staff_arg("N001:李护士"), metavar="CODE:NAME")
    ack.add_argument("--received-at", type=datetime_arg, default=None, help="ISO date-time (default now)")
    ack.add_argument("--no-read-back", action="store_true", help="send ReadBackConfirmed=false (refused)")

    handle = commands.add_parser("handle-critical", parents=state,
                                 help="RecordCriticalValueHandling (the clinician's handling opinion)")
    handle.add_argument("critical_value_no")
    handle.add_argument("--opinion", required=True, help="handling opinion")
    handle.add_argument("--handled-by", type=staff_arg, default=staff_arg("D001:王医生"), metavar="CODE:NAME")
    handle.add_argument("--handled-at", type=datetime_arg, default=None, help="ISO date-time (default now)")

    commands.add_parser("critical-values", parents=[*where, critical_values_parser()],
                        help="QueryCriticalValues (what the wards still owe, and every step)")

    emr = commands.add_parser("publish-emr", parents=state, help="PublishEmr (a visit's documents and orders)")
    emr.add_argument("patient_id")
    emr.add_argument("--visit-no", help="default: generated; document ids are VISIT_NO-D1, -D2, ... and "
                     "order numbers VISIT_NO-O1, ..., so publishing again (with the same visit options) "
                     "and a higher --version replaces them")
    emr.add_argument("--patient-type", choices=PATIENT_TYPES, default="OUTPATIENT")
    emr.add_argument("--visit-at", type=datetime_arg,
                     help="ISO date-time; when not given, VisitAt is left out and a known visit keeps its own")
    emr.add_argument("--department-name", default="内科")
    emr.add_argument("--diagnosis")
    emr.add_argument("--document", type=document_arg, action="append", default=[],
                     metavar="TYPE:TITLE:CONTENT", help="e.g. 入院记录:入院记录:突发头痛2小时; repeatable")
    emr.add_argument("--version", type=int, help="document version (server default 1)")
    emr.add_argument("--author", default="王医生")
    emr.add_argument("--recorded-at", type=datetime_arg, default=None,
                     help="when the documents were written and the orders given (default: --visit-at, else now)")
    emr.add_argument("--order", action="append", default=[], metavar="CONTENT", help="an order; repeatable")

    ping = commands.add_parser("ping", parents=where, help="Ping")
    ping.add_argument("--echo")
    return parser


def submit_request(args) -> dict:
    item = {"ItemCode": args.item_code, "ItemName": args.item_name, "Quantity": args.quantity,
            "Modality": args.modality, "BodyPart": args.body_part}
    if args.component:
        item["Components"] = {"ApplicationItem": args.component}
    price = args.price
    if price is None:  # a package is priced by its components
        price = sum((c["UnitPrice"] * c["Quantity"] for c in args.component), Decimal(0)) or Decimal("150.00")
    item["UnitPrice"] = price
    ordered_at = args.ordered_at or now()
    visit = {"VisitNo": args.visit_no or new_id("V"), "PatientType": args.patient_type, "VisitAt": ordered_at}
    if args.patient_type == "INPATIENT":
        visit.update({"WardCode": "W01", "WardName": "内科一病区", "BedNo": "12"})
    return {
        "ApplicationNo": args.application_no or new_id("A"),
        "Patient": {"PatientId": args.patient_id or new_id("P"), "Name": args.patient_name, "Sex": args.sex},
        "Visit": visit,
        "OrderingDoctor": args.doctor,
        "OrderingDepartmentCode": args.ordering_department,
        "OrderingDepartmentName": args.ordering_department_name,
        "ExecutingDepartmentCode": args.department,
        "ExecutingDepartmentName": args.department_name,
        "OrderedAt": ordered_at,
        "Items": {"ApplicationItem": [item]},
        "ClinicalDiagnosis": args.diagnosis,
        "Priority": args.priority,
    }


def request_for(args) -> dict | None:
    if args.command == "submit":
        return submit_request(args)
    if args.command == "pay":
        request = {"ApplicationNo": args.application_no, "Amount": args.amount,
                   "PaidAt": args.paid_at or now()}
        if args.invoice_no:
            request["InvoiceNo"] = args.invoice_no
        return request
    if args.command == "send":
        return {"ApplicationNo": args.application_no, "Nurse": args.nurse, "SentAt": args.sent_at or now()}
    if args.command == "cancel":
        return {"ApplicationNo": args.application_no, "Reason": args.reason, "Operator": args.operator,
                "CancelledAt": args.cancelled_at or now()}
    if args.command == "get":
        return {"ApplicationNo": args.application_no}
    if args.command == "charges":
        keys = {"ApplicationNo": args.application_no, "PatientId": args.patient_id, "VisitNo": args.visit_no}
        return {k: v for k, v in keys.items() if v}
    if args.command == "reports":
        request = {"ApplicationNo": args.application_no, "PatientId": args.patient_id,
                   "IncludePrior": False if args.no_prior else None,
                   "IncludePreliminary": True if args.include_preliminary else None, "From": args.from_, "To": args.to}
        return {k: v for k, v in request.items() if v is not None}
    if args.command == "ack-critical":
        return {"CriticalValueNo": args.critical_value_no, "ReceivedBy": args.received_by,
                "ReceivedAt": args.received_at or now(), "ReadBackConfirmed": not args.no_read_back}
    if args.command == "handle-critical":
        return {"CriticalValueNo": args.critical_value_no, "HandledBy": args.handled_by,
                "HandledAt": args.handled_at or now(), "HandlingOpinion": args.opinion}
    if args.command == "critical-values":
        return critical_values_request(args)
    if args.command == "publish-emr":
        return publish_emr_request(args)
    return {"Echo": args.echo} if args.echo else None


def publish_emr_request(args) -> dict:
    visit_no = args.visit_no or new_id("V")
    recorded_at = args.recorded_at or args.visit_at or now()
    visit = {"VisitNo": visit_no, "PatientType": args.patient_type, "DepartmentName": args.department_name}
    if args.visit_at:
        visit["VisitAt"] = args.visit_at
    if args.diagnosis:
        visit["Diagnosis"] = args.diagnosis
    documents = [{"DocumentId": f"{visit_no}-D{n}", **doc, "AuthorName": args.author, "RecordedAt": recorded_at}
                 for n, doc in enumerate(args.document, 1)]
    if args.version:
        documents = [{**doc, "Version": args.version} for doc in documents]
    request = {"PatientId": args.patient_id, "Visit": visit, "Documents": {"EmrDocument": documents}}
    if args.order:
        request["Orders"] = {"EmrOrder": [{"OrderNo": f"{visit_no}-O{n}", "Content": content, "OrderedAt": recorded_at}
                                          for n, content in enumerate(args.order, 1)]}
    return request


# What a retry must repeat besides --message-id: the values generated when not given.
RETRY_FLAGS = {
    "submit": {"--application-no": ("ApplicationNo",), "--patient-id": ("Patient", "PatientId"),
               "--visit-no": ("Visit", "VisitNo"), "--ordered-at": ("OrderedAt",)},
    "pay": {"--paid-at": ("PaidAt",)},
    "send": {"--sent-at": ("SentAt",)},
    "cancel": {"--cancelled-at": ("CancelledAt",)},
    "ack-critical": {"--received-at": ("ReceivedAt",)},
    "handle-critical": {"--handled-at": ("HandledAt",)},
    "publish-emr": {"--visit-no": ("Visit", "VisitNo"),
                    "--recorded-at": [("Documents", "EmrDocument", 0, "RecordedAt"), ("Orders", "EmrOrder", 0, "OrderedAt")]},
}
OPERATIONS = {"submit": "SubmitApplication", "pay": "ConfirmPayment", "send": "SendInpatientOrder",
              "cancel": "CancelApplication", "get": "GetApplication", "charges": "QueryCharges",
              "reports": "QueryReports", "ack-critical": "AcknowledgeCriticalValue",
              "handle-critical": "RecordCriticalValueHandling", "critical-values": "QueryCriticalValues",
              "publish-emr": "PublishEmr", "ping": "Ping"}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "charges":
        args.application_no = args.application or args.application_no
    if args.command == "charges" and not (args.application_no or args.patient_id):
        print("charges: give APPLICATION_NO or --patient-id", file=sys.stderr)
        return 2
    if args.command == "reports" and (args.application_no is None) == (args.patient_id is None):
        print("reports: give APPLICATION_NO or --patient-id (exactly one of them)", file=sys.stderr)
        return 2
    if args.command == "publish-emr" and not (args.document or args.order):
        print("publish-emr: give --document or --order", file=sys.stderr)
        return 2
    [wsse] = login(args, "his")
    request = request_for(args)
    if args.command in RETRY_FLAGS:
        request = {"MessageId": args.message_id or new_id("M"), **request}
        announce(request, RETRY_FLAGS[args.command])
    his = connect("his", args.url, args.wsdl_dir, wsse)
    return call(getattr(his, OPERATIONS[args.command]), request)


if __name__ == "__main__":
    run_main(main)
