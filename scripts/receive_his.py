#!/usr/bin/env python3
"""A HIS's callback service (HisCallbackService), hosted from wsdl/his-callback.wsdl: what a
HIS receives when his-pacs-ws pushes (status changes, reports, charges, critical values).

Point a HIS system's callback at it on the server, then watch:
  his-pacs-ws systems set-callback his1 --url http://127.0.0.1:8101/
  receive_his.py --port 8101
Rehearse outages: --slow 15 (past the deliverer's timeout), --fail 3 (three Server faults,
then success), --client-fault ChargesPosted (refused: the delivery is FAILED, see
`his-pacs-ws deliveries list --status FAILED`). Stop it (Ctrl-C) and start it again later:
nothing is lost, every notification arrives in order.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _receiver import parser, serve  # noqa: E402


def describe(operation: str, r) -> str:
    if operation == "ApplicationStatusChanged":
        lock = ", locked: the doctor can no longer cancel" if r.Locked else ""
        return f"application {r.ApplicationNo} is {r.Status} ({r.HisStatus}) after {r.Event}{lock}"
    if operation == "ReportPublished":
        rep = r.Report
        images = len(rep.ImageUrls.ImageUrl) if rep.ImageUrls is not None else 0
        return (f"report {rep.ReportNo} v{rep.Version} {rep.ResultStatus} of {rep.ApplicationNo}: "
                f"{rep.Impression or ''} ({images} image links{', viewer ' + rep.ViewerUrl if rep.ViewerUrl else ''})")
    if operation == "ChargesPosted":
        lines = r.Charges.ChargeLine if r.Charges is not None else []
        refunds = r.Refunds.RefundRecord if r.Refunds is not None else []
        charged = ", ".join(f"{c.ItemName} {c.Amount} ({c.Trigger})" for c in lines if c.RefundedAmount == 0)
        refunded = ", ".join(f"charge {x.ChargeId} -{x.Amount} ({x.Source})" for x in refunds)
        return (f"ledger of {r.ApplicationNo}: {charged or '-'}; refunds: {refunded or '-'}; "
                f"total charged {r.TotalCharged}, refunded {r.TotalRefunded}")
    cv = r.CriticalValue
    if operation == "CriticalValueRaised":
        return (f"危急值 {cv.CriticalValueNo} for application {cv.ApplicationNo} ({cv.DepartmentCode}): {cv.Finding}; "
                f"receive with read-back by {cv.AckDeadline:%H:%M:%S}")
    if operation == "CriticalValueRevoked":
        return f"危急值 {cv.CriticalValueNo} revoked: {cv.RevokeReason or ''}"
    return f"危急值 {cv.CriticalValueNo} NOT RECEIVED by its deadline {cv.AckDeadline:%H:%M:%S}: escalate"


if __name__ == "__main__":
    serve(parser(__doc__, 8101).parse_args(), "his-callback.wsdl", "HisCallbackService", describe)
