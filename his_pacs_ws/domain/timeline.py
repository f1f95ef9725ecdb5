"""An application's timeline: which events it records and who they came from.

The names are stored in status_events and shown in GetApplication's Timeline (StatusEvent's
Event and Source), so a value here is never renamed.
"""

from __future__ import annotations

import enum

from his_pacs_ws.domain.reports import ResultStatus
from his_pacs_ws.domain.status import PacsEvent


class Source(str, enum.Enum):
    """Who caused an event: the HIS, the PACS, or the service itself."""

    HIS = "HIS"
    PACS = "PACS"
    SYSTEM = "SYSTEM"


class Event(str, enum.Enum):
    # HIS
    SUBMITTED = "SUBMITTED"
    PAID = "PAID"
    ORDER_SENT = "ORDER_SENT"
    CANCELLED = "CANCELLED"
    # PACS, through ReportStatus: the PacsEvent of the same name
    SCHEDULED = "SCHEDULED"
    REGISTERED = "REGISTERED"
    EXAMINED = "EXAMINED"
    SCHEDULE_CANCELLED = "SCHEDULE_CANCELLED"
    REGISTRATION_CANCELLED = "REGISTRATION_CANCELLED"
    # PACS, through PushReport: REPORT_ and the report's ResultStatus
    REPORT_PRELIMINARY = "REPORT_PRELIMINARY"
    REPORT_FINAL = "REPORT_FINAL"
    REPORT_CORRECTED = "REPORT_CORRECTED"
    REPORT_WITHDRAWN = "REPORT_WITHDRAWN"

    @classmethod
    def of_pacs(cls, event: PacsEvent) -> Event:
        return cls(event.value)

    @classmethod
    def of_report(cls, result: ResultStatus) -> Event:
        return cls(f"REPORT_{result.value}")


# Events that take a step back: never what a later forward event is compared with.
UNDOING = (Event.SCHEDULE_CANCELLED, Event.REGISTRATION_CANCELLED, Event.REPORT_WITHDRAWN)
