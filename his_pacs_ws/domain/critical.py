"""The critical-value (危急值) loop: RAISED -> RECEIVED -> HANDLED, or REVOKED before HANDLED."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from his_pacs_ws.domain.errors import InvalidTransition


class CriticalStatus(str, enum.Enum):
    RAISED = "RAISED"
    RECEIVED = "RECEIVED"
    HANDLED = "HANDLED"
    REVOKED = "REVOKED"


def ack_deadline(reported_at: datetime, minutes: int) -> datetime:
    return reported_at + timedelta(minutes=minutes)


def check_acknowledge(status: CriticalStatus, read_back_confirmed: bool, number: str) -> None:
    """Receipt needs read-back (回读): the receiver repeats the value to the reporter."""
    if status is not CriticalStatus.RAISED:
        raise InvalidTransition(f"critical value {number} is {status.value}; only a RAISED value is received")
    if not read_back_confirmed:
        raise InvalidTransition(
            f"critical value {number}: receipt needs the value read back (ReadBackConfirmed=true)"
        )


def check_handle(status: CriticalStatus, number: str) -> None:
    if status is not CriticalStatus.RECEIVED:
        raise InvalidTransition(
            f"critical value {number} is {status.value}; handling is recorded after receipt"
        )


def check_revoke(status: CriticalStatus, number: str) -> bool:
    """Whether PACS may revoke; True means it is revoked already (a harmless repeat)."""
    if status is CriticalStatus.REVOKED:
        return True
    if status is CriticalStatus.HANDLED:
        raise InvalidTransition(f"critical value {number} is handled; it can no longer be revoked")
    return False


def is_overdue(deadline: datetime, received_at: datetime | None, revoked_at: datetime | None,
               now: datetime) -> bool:
    """Not received by the deadline: still waiting past it, or received late. A value
    revoked before its deadline was never owed a receipt."""
    return (received_at or revoked_at or now) > deadline


def minutes_between(start: datetime, end: datetime | None) -> Decimal | None:
    if end is None:
        return None
    delta = end - start
    minutes = (Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / 10**6) / 60
    return max(minutes, Decimal(0)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
