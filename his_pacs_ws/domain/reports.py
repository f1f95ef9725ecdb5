"""Report versions and what a pushed report does to the application's status."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from his_pacs_ws.domain.errors import InvalidTransition, SchemaValidationError
from his_pacs_ws.domain.status import RANK, Status


class ResultStatus(str, enum.Enum):
    PRELIMINARY = "PRELIMINARY"
    FINAL = "FINAL"
    CORRECTED = "CORRECTED"
    WITHDRAWN = "WITHDRAWN"  # 取消审核: the issued report is taken back for revision


ISSUED = frozenset({ResultStatus.FINAL, ResultStatus.CORRECTED})
TARGET = {
    ResultStatus.PRELIMINARY: Status.REPORTED,
    ResultStatus.FINAL: Status.VERIFIED,
    ResultStatus.CORRECTED: Status.VERIFIED,
    ResultStatus.WITHDRAWN: Status.EXAMINED,
}


@dataclass(frozen=True)
class ReportOutcome:
    """``status`` is where the application ends up; ``moves`` whether it changed;
    ``stores`` whether the push becomes a new version of the report."""

    status: Status
    moves: bool
    stores: bool


def check_verification(result: ResultStatus, verifying_doctor, verified_at, positive=False) -> None:
    """An issued report names who verified it and when, and says whether it is positive:
    an absent Positive (a .NET client that forgot PositiveSpecified) would lose a 阳性."""
    if result in ISSUED and (verifying_doctor is None or verified_at is None):
        raise SchemaValidationError(f"{result.value} reports need VerifyingDoctor and VerifiedAt")
    if result in ISSUED and positive is None:
        raise SchemaValidationError(
            f"Element 'Positive': {result.value} reports need it (true 阳性, false 阴性)")


def apply_report(current: Status, result: ResultStatus, latest: ResultStatus | None) -> ReportOutcome:
    """Decide what a new push of a report does, given its latest stored version.

    A preliminary arriving after the final is stale (networks reorder): kept out of the
    history so it cannot hide the final. A second FINAL must come as CORRECTED.
    """
    if current is Status.CANCELLED:
        raise InvalidTransition("the application is cancelled; it takes no report")
    if result is ResultStatus.WITHDRAWN:
        if latest is None or latest is ResultStatus.WITHDRAWN:
            raise InvalidTransition("there is no report to withdraw")
        moves = current in (Status.REPORTED, Status.VERIFIED)
        return ReportOutcome(Status.EXAMINED if moves else current, moves, True)
    if result is ResultStatus.CORRECTED and latest not in ISSUED:
        raise InvalidTransition("CORRECTED needs a FINAL report to correct")
    if result is ResultStatus.FINAL and latest in ISSUED:
        raise InvalidTransition("the report is final already; send changes as CORRECTED")
    if result is ResultStatus.PRELIMINARY and latest in ISSUED:
        return ReportOutcome(current, False, False)
    target = TARGET[result]
    moves = RANK[target] > RANK[current]
    return ReportOutcome(target if moves else current, moves, True)
