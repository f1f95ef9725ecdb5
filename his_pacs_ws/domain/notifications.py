"""Push mode: which notifications exist, who receives them, and how a failed delivery is
retried. Pure rules; the outbox and the deliverer apply them."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from his_pacs_ws.domain.access import Role


class Notification(str, enum.Enum):
    """The callback operations partners implement (names binding: CONTRACT.md)."""

    # HisCallbackService, implemented by the HIS
    APPLICATION_STATUS_CHANGED = "ApplicationStatusChanged"
    REPORT_PUBLISHED = "ReportPublished"
    CHARGES_POSTED = "ChargesPosted"
    CRITICAL_VALUE_RAISED = "CriticalValueRaised"
    CRITICAL_VALUE_REVOKED = "CriticalValueRevoked"
    CRITICAL_VALUE_OVERDUE = "CriticalValueOverdue"
    # PacsCallbackService, implemented by the PACS
    APPLICATION_RELEASED = "ApplicationReleased"
    APPLICATION_CANCELLED = "ApplicationCancelled"
    CRITICAL_VALUE_UPDATED = "CriticalValueUpdated"

    @property
    def receiver_role(self) -> Role:
        return Role.PACS if self in _TO_PACS else Role.HIS

    @property
    def critical(self) -> bool:
        """Critical values go first and retry sooner: the clinician has minutes."""
        return self in _CRITICAL


_TO_PACS = {Notification.APPLICATION_RELEASED, Notification.APPLICATION_CANCELLED,
            Notification.CRITICAL_VALUE_UPDATED}
_CRITICAL = {Notification.CRITICAL_VALUE_RAISED, Notification.CRITICAL_VALUE_REVOKED,
             Notification.CRITICAL_VALUE_OVERDUE, Notification.CRITICAL_VALUE_UPDATED}


def for_role(role: Role) -> list[Notification]:
    return [n for n in Notification if n.receiver_role is role]


def parse_events(text: str | None, role: Role) -> list[str] | None:
    """``--events ReportPublished,CriticalValueRaised`` for a system of ``role``: the names,
    checked, or None for every notification of the role."""
    if not text:
        return None
    allowed = {n.value: n for n in for_role(role)}
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a notification a {role.value} receives "
                         f"(one of {', '.join(allowed)})")
    return sorted(set(names))


class CallbackPasswordType(str, enum.Enum):
    """How we sign in to a partner's callback: WS-Security PasswordDigest or PasswordText."""

    DIGEST = "digest"
    TEXT = "text"


class DeliveryStatus(str, enum.Enum):
    PENDING = "PENDING"      # not tried yet
    RETRYING = "RETRYING"    # tried, failed in a way worth retrying, waiting for next_attempt_at
    DELIVERED = "DELIVERED"  # the receiver answered <Op>Result
    FAILED = "FAILED"        # refused (Client fault), expired, or the callback was removed


class Outcome(str, enum.Enum):
    """How one attempt ended."""

    DELIVERED = "DELIVERED"
    CLIENT_FAULT = "CLIENT_FAULT"          # the receiver refuses it: not retried
    SERVER_FAULT = "SERVER_FAULT"          # the receiver failed on it: retried
    HTTP_ERROR = "HTTP_ERROR"              # an HTTP error without a SOAP fault (a proxy's 502)
    TIMEOUT = "TIMEOUT"
    CONNECTION_ERROR = "CONNECTION_ERROR"  # refused, reset, unresolvable
    NOT_SENT = "NOT_SENT"                  # we could not write it (a fault of ours): kept, not retried

    @property
    def retryable(self) -> bool:
        return self not in (Outcome.DELIVERED, Outcome.CLIENT_FAULT, Outcome.NOT_SENT)

    @property
    def receiver_down(self) -> bool:
        """The receiver itself is unreachable, not just unhappy with one notification: hold
        every delivery to it, not only this application's."""
        return self in (Outcome.TIMEOUT, Outcome.CONNECTION_ERROR, Outcome.HTTP_ERROR)


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 1.0
    cap_seconds: float = 600.0
    critical_cap_seconds: float = 30.0
    max_age: timedelta = timedelta(hours=24)

    def delay(self, attempts: int, *, critical: bool, rng: random.Random | None = None) -> float:
        """Exponential backoff with full jitter over the upper half: after the n-th failed
        attempt, between half and all of min(cap, base * 2^(n-1)) seconds."""
        cap = self.critical_cap_seconds if critical else self.cap_seconds
        ceiling = min(cap, self.base_seconds * (2 ** min(max(attempts - 1, 0), 32)))
        return ceiling * (0.5 + 0.5 * (rng or random).random())

    def next_attempt(self, now: datetime, attempts: int, *, critical: bool) -> datetime:
        return now + timedelta(seconds=self.delay(attempts, critical=critical))


def receives(kind: Notification, *, role: Role, events: list[str] | None,
             departments: frozenset[str] | None, department_code: str | None,
             receiver: str, origin: str | None) -> bool:
    """Whether a subscribed system gets this notification: its role's kind, one of the
    events it asked for, of a department it serves, and not about its own call."""
    if kind.receiver_role is not role or receiver == origin:
        return False
    if events is not None and kind.value not in events:
        return False
    return departments is None or department_code in departments
