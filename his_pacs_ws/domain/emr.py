"""Reading a patient's EMR (病历): how much of it a query covers."""

from __future__ import annotations

import enum


class EmrScope(str, enum.Enum):
    CURRENT_VISIT = "CURRENT_VISIT"  # the visit of the VisitNo or ApplicationNo, else the newest
    ALL_VISITS = "ALL_VISITS"
