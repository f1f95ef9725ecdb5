#!/usr/bin/env python3
"""PACS simulator: calls PacsService of a his-pacs-ws deployment, as a PACS/RIS would.

Examples:
  simulate_pacs.py worklist --department CT
  simulate_pacs.py status A123 REGISTERED --accession-no ACC001
  simulate_pacs.py charge A123 --item FILM01:胶片:10.00:2
  simulate_pacs.py refund A123 --line 12:1 --reason 设备故障，主任批准免费
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
    datetime_arg,
    decimal_arg,
    deployment_parser,
    item_arg,
    message_id_parser,
    new_id,
    now,
    staff_arg,
)

STATUSES = ("NEW", "RELEASED", "SCHEDULED", "REGISTERED", "EXAMINED", "REPORTED", "VERIFIED", "CANCELLED")
EVENTS = ("SCHEDULED", "REGISTERED", "EXAMINED", "SCHEDULE_CANCELLED", "REGISTRATION_CANCELLED")
CLERK = "R001:登记员"


def refund_line_arg(text: str) -> dict:
    """`CHARGE_ID:QUANTITY` as a RefundLine."""
    charge_id, sep, quantity = text.partition(":")
    if not sep or not charge_id:
        raise argparse.ArgumentTypeError(f"expected CHARGE_ID:QUANTITY, got {text!r}")
    return {"ChargeId": charge_id, "Quantity": decimal_arg(quantity)}


def build_parser():
    parser = base_parser("Simulate a PACS/RIS calling PacsService.")
    commands = parser.add_subparsers(dest="command", required=True)
    where = deployment_parser(with_defaults=False)
    state = [where, message_id_parser()]

    worklist = commands.add_parser("worklist", parents=[where],
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

    ping = commands.add_parser("ping", parents=[where], help="Ping")
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
    return {"Echo": args.echo} if args.echo else None


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
}
OPERATIONS = {"worklist": "QueryApplications", "status": "ReportStatus", "charge": "Charge",
              "refund": "Refund", "ping": "Ping"}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    request = request_for(args)
    if args.command in RETRY_FLAGS:
        request = {"MessageId": args.message_id or new_id("M"), **request}
        announce(request, RETRY_FLAGS[args.command])
    pacs = connect("pacs", args.url, args.wsdl_dir)
    operation = getattr(pacs, OPERATIONS[args.command])
    if args.command == "worklist" and not args.full:
        return call(operation, request, printer=print_worklist)
    return call(operation, request)


if __name__ == "__main__":
    sys.exit(main())
