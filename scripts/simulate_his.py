#!/usr/bin/env python3
"""HIS simulator: calls HisService of a his-pacs-ws deployment, as a hospital HIS would.

Examples:
  simulate_his.py submit --patient-name 小明 --item-code CT001 --item-name 头颅CT平扫 --price 150
  simulate_his.py pay A123 --amount 150.00   # prints the flags that repeat it as a retry
  simulate_his.py submit --patient-type INPATIENT --item-code PKG01 --item-name CT增强组套 \\
      --component CT002:CT增强:400.00 --component ZL001:留置针:35.00
"""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _client import (
    announce,
    base_parser,
    call,
    connect,
    datetime_arg,
    decimal_arg,
    deployment_parser,
    item_arg,
    message_id_parser,
    new_id,
    now,
    staff_arg,
)

PATIENT_TYPES = ("OUTPATIENT", "EMERGENCY", "INPATIENT", "PHYSICAL_EXAM")


def build_parser():
    parser = base_parser("Simulate a HIS calling HisService.")
    commands = parser.add_subparsers(dest="command", required=True)
    where = deployment_parser(with_defaults=False)
    state = [where, message_id_parser()]

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

    get = commands.add_parser("get", parents=[where], help="GetApplication")
    get.add_argument("application_no")

    charges = commands.add_parser("charges", parents=[where],
                                  help="QueryCharges (by application, or patient and visit)")
    charges.add_argument("--application-no")
    charges.add_argument("--patient-id")
    charges.add_argument("--visit-no")

    ping = commands.add_parser("ping", parents=[where], help="Ping")
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
    return {"Echo": args.echo} if args.echo else None


# What a retry must repeat besides --message-id: the values generated when not given.
RETRY_FLAGS = {
    "submit": {"--application-no": ("ApplicationNo",), "--patient-id": ("Patient", "PatientId"),
               "--visit-no": ("Visit", "VisitNo"), "--ordered-at": ("OrderedAt",)},
    "pay": {"--paid-at": ("PaidAt",)},
    "send": {"--sent-at": ("SentAt",)},
    "cancel": {"--cancelled-at": ("CancelledAt",)},
}
OPERATIONS = {"submit": "SubmitApplication", "pay": "ConfirmPayment", "send": "SendInpatientOrder",
              "cancel": "CancelApplication", "get": "GetApplication", "charges": "QueryCharges",
              "ping": "Ping"}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "charges" and not (args.application_no or args.patient_id):
        print("charges: give --application-no or --patient-id", file=sys.stderr)
        return 2
    request = request_for(args)
    if args.command in RETRY_FLAGS:
        request = {"MessageId": args.message_id or new_id("M"), **request}
        announce(request, RETRY_FLAGS[args.command])
    his = connect("his", args.url, args.wsdl_dir)
    return call(getattr(his, OPERATIONS[args.command]), request)


if __name__ == "__main__":
    sys.exit(main())
