#!/usr/bin/env python3
"""A PACS's callback service (PacsCallbackService), hosted from wsdl/pacs-callback.wsdl: what a
PACS receives when his-pacs-ws pushes (paid or sent applications for the worklist,
cancellations, the critical-value loop closing).

  his-pacs-ws systems set-callback pacs1 --url http://127.0.0.1:8102/
  receive_pacs.py --port 8102
The same rehearsal options as receive_his.py (--slow, --fail N, --client-fault OPERATION).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _receiver import parser, serve  # noqa: E402


def describe(operation: str, r) -> str:
    if operation in ("ApplicationReleased", "ApplicationCancelled"):
        app = r.Application
        items = ", ".join(i.ItemName for i in app.Items.ApplicationItem)
        if operation == "ApplicationReleased":
            return (f"on the worklist: {app.ApplicationNo} for {app.ExecutingDepartmentCode}, "
                    f"{app.Patient.Name} ({app.Visit.PatientType}): {items}")
        return f"cancelled by HIS: {app.ApplicationNo} ({r.Reason or ''}); take it off the worklist"
    cv = r.CriticalValue
    steps = {"RECEIVED": f"received by {cv.ReceivedBy.Name if cv.ReceivedBy else '?'} with read-back",
             "HANDLED": f"handled by {cv.HandledBy.Name if cv.HandledBy else '?'}: {cv.HandlingOpinion or ''}; loop closed"}
    return f"危急值 {cv.CriticalValueNo} of {cv.ApplicationNo}: {steps.get(cv.Status, cv.Status)}"


if __name__ == "__main__":
    serve(parser(__doc__, 8102).parse_args(), "pacs-callback.wsdl", "PacsCallbackService", describe)
