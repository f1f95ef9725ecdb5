"""The application status machine: a table of ranks and events, and pure functions over it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from his_pacs_ws.domain.errors import ApplicationLocked, InvalidTransition


class Status(str, enum.Enum):
    NEW = "NEW"
    RELEASED = "RELEASED"
    SCHEDULED = "SCHEDULED"
    REGISTERED = "REGISTERED"
    EXAMINED = "EXAMINED"
    REPORTED = "REPORTED"
    VERIFIED = "VERIFIED"
    CANCELLED = "CANCELLED"


class PatientType(str, enum.Enum):
    OUTPATIENT = "OUTPATIENT"
    EMERGENCY = "EMERGENCY"
    INPATIENT = "INPATIENT"
    PHYSICAL_EXAM = "PHYSICAL_EXAM"

    @property
    def pays_at_cashier(self) -> bool:
        """Everyone but inpatients pays before the exam; inpatients settle at discharge."""
        return self is not PatientType.INPATIENT


class Priority(str, enum.Enum):
    """How soon the exam is wanted; an application without one is ROUTINE."""

    ROUTINE = "ROUTINE"
    URGENT = "URGENT"


# Forward order of the workflow. CANCELLED is terminal and outside the order.
RANK = {
    Status.NEW: 0,
    Status.RELEASED: 1,
    Status.SCHEDULED: 2,
    Status.REGISTERED: 3,
    Status.EXAMINED: 4,
    Status.REPORTED: 5,
    Status.VERIFIED: 6,
}

# What the HIS screen shows (HisStatus); NEW depends on who has to act next.
HIS_STATUS = {
    Status.RELEASED: "待执行",
    Status.SCHEDULED: "待执行",
    Status.REGISTERED: "执行中",
    Status.EXAMINED: "执行中",
    Status.REPORTED: "执行中",
    Status.VERIFIED: "已完成",
    Status.CANCELLED: "已撤销",
}

def his_status(status: Status, patient_type: PatientType) -> str:
    if status is Status.NEW:
        return "待收费" if patient_type.pays_at_cashier else "待发送"
    return HIS_STATUS[status]


def is_locked(status: Status) -> bool:
    """From registration on, HIS can no longer cancel or refund the exam."""
    return status in RANK and RANK[status] >= RANK[Status.REGISTERED]


class PacsEvent(str, enum.Enum):
    """Events PACS reports through ReportStatus."""

    SCHEDULED = "SCHEDULED"
    REGISTERED = "REGISTERED"
    EXAMINED = "EXAMINED"
    SCHEDULE_CANCELLED = "SCHEDULE_CANCELLED"
    REGISTRATION_CANCELLED = "REGISTRATION_CANCELLED"


# Undo events: (the status they undo, the status they return to).
UNDO = {
    PacsEvent.SCHEDULE_CANCELLED: (Status.SCHEDULED, Status.RELEASED),
    PacsEvent.REGISTRATION_CANCELLED: (Status.REGISTERED, Status.RELEASED),
}


@dataclass(frozen=True)
class Outcome:
    """What an event does: the status it leads to, and whether it moved the application."""

    status: Status
    applied: bool


def apply_pacs_event(current: Status, event: PacsEvent, *, superseded: bool = False) -> Outcome:
    """Decide what a PACS status event does to an application in ``current``.

    Networks reorder, so an event can arrive after events that happened later. Such an
    event is stale: recorded, not applied. ``superseded`` says the timeline already holds
    a later event that makes this one moot: for a forward event, a later undo of its
    status; for an undo, a later event at or beyond the status it would undo.
    """
    if current is Status.CANCELLED:
        raise InvalidTransition(f"the application is cancelled; {event.value} does not apply")
    if event in UNDO:
        undoes, back_to = UNDO[event]
        if superseded or RANK[current] < RANK[undoes]:
            # Already superseded, undone, or never reached: harmless, recorded as stale.
            return Outcome(back_to, False)
        if current is undoes:
            return Outcome(back_to, True)
        raise InvalidTransition(f"{event.value} is not possible once the application is {current.value}")
    target = Status(event.value)
    if RANK[target] <= RANK[current] or superseded:
        return Outcome(target, False)
    return Outcome(target, True)


def superseding_statuses(event: PacsEvent) -> tuple[list[str], list[str]]:
    """What would supersede ``event``: (undo events, or forward statuses) to look for
    later in the timeline. See ``apply_pacs_event``."""
    if event in UNDO:
        undoes = UNDO[event][0]
        return [], [s.value for s in RANK if RANK[s] >= RANK[undoes]]
    target = Status(event.value)
    return [u.value for u, (undoes, _) in UNDO.items() if undoes is target], []


def check_his_cancel(current: Status) -> bool:
    """Whether HIS may cancel; True means it is already cancelled (a harmless repeat)."""
    if current is Status.CANCELLED:
        return True
    if is_locked(current):
        raise ApplicationLocked(
            f"the application is {current.value}: the exam has started, HIS can no longer cancel it"
        )
    return False


def check_release(current: Status, what: str) -> None:
    """Payment and the nurse's send release a NEW application, and nothing else."""
    if current is not Status.NEW:
        raise InvalidTransition(f"{what} applies to a NEW application; this one is {current.value}")
