"""The outbox and the delivery queue: events written with the change that made them, fanned
out to the subscribed receivers, and claimed by deliverers with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Sequence

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from his_pacs_ws.db.raw import jsonb, raw
from his_pacs_ws.db.models import (
    CallbackEndpoint,
    CallRecord,
    Delivery,
    OutboxEvent,
    PartnerSystem,
)

OPEN = ("PENDING", "RETRYING")
# Fan-out runs in one transaction at a time, whichever deliverer holds this lock: events of
# one application become deliveries in Sequence order.
_FAN_OUT_LOCK = 0x4849_5346  # "HISF"
_OVERDUE_LOCK = 0x4849_534F  # "HISO"
_EVENT_COLUMNS = ("kind", "target_role", "application_no", "patient_id", "department_code", "origin",
                  "payload", "occurred_at")
_ADD_EVENT = (f"INSERT INTO outbox_events ({', '.join(_EVENT_COLUMNS)}, fanned_out) "
              f"VALUES ({', '.join(['%s'] * len(_EVENT_COLUMNS))}, false)")


@dataclass(frozen=True)
class Subscriber:
    system_pk: int
    name: str
    role: str
    departments: frozenset[str] | None
    events: list[str] | None


@dataclass(frozen=True)
class Claimed:
    """A delivery a deliverer holds (its row lock) until it commits the outcome."""

    id: int
    event_pk: int
    attempts: int
    priority: int
    expires_at: datetime
    kind: str
    payload: dict
    occurred_at: datetime
    application_no: str
    patient_id: str | None
    system_pk: int
    system: str
    url: str
    username: str | None
    secret: bytes | None
    password_type: str
    timeout_seconds: float


# Heads of their (receiver, application) queues only: a delivery waits while an earlier one
# to the same receiver about the same application is still open. A receiver that cannot be
# reached waits as a whole (retry_at); a paused one is not served.
_CLAIM = text("""
    SELECT d.id, d.event_pk, d.attempts, d.priority, d.expires_at,
           e.kind, e.payload, e.occurred_at, e.application_no, e.patient_id,
           s.id AS system_pk, s.name AS system, c.url, c.username, c.secret, c.password_type,
           c.timeout_seconds
    FROM deliveries d
    JOIN outbox_events e ON e.id = d.event_pk
    JOIN systems s ON s.id = d.system_pk
    JOIN callback_endpoints c ON c.system_pk = d.system_pk
    WHERE d.status IN ('PENDING', 'RETRYING') AND d.next_attempt_at <= now()
      AND (d.lease_until IS NULL OR d.lease_until < now())
      AND NOT c.paused AND (c.retry_at IS NULL OR c.retry_at <= now())
      AND NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.system_pk = d.system_pk AND p.application_no = d.application_no
            AND p.status IN ('PENDING', 'RETRYING') AND p.event_pk < d.event_pk)
    ORDER BY d.priority, d.next_attempt_at, d.id
    LIMIT :limit
    FOR UPDATE OF d SKIP LOCKED
""")


_RECOVER = text("""
    WITH old AS (
        SELECT id, failure_streak, failing_since FROM callback_endpoints
        WHERE system_pk = :pk AND failure_streak > 0 FOR UPDATE)
    UPDATE callback_endpoints c
    SET failure_streak = 0, failing_since = NULL, retry_at = NULL, last_success_at = :at
    FROM old WHERE c.id = old.id
    RETURNING old.failure_streak, old.failing_since
""")


class OutboxRepository:
    def __init__(self, session: Session):
        self.session = session

    # --- written by the use cases, in their transaction
    def add_event(self, values: dict) -> None:
        """Written with the use case's COMMIT (nothing in the transaction reads it back)."""
        raw(self.session).defer(_ADD_EVENT, [jsonb(values[c]) if c == "payload" else values[c]
                                             for c in _EVENT_COLUMNS])

    def lock_application(self, pk: int) -> None:
        """The application's row lock, which orders its events (and so their Sequence)."""
        raw(self.session).one("SELECT id FROM applications WHERE id = %s FOR UPDATE", (pk,))

    # --- fan-out
    def try_fan_out_lock(self) -> bool:
        return bool(self.session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _FAN_OUT_LOCK}))

    def try_overdue_lock(self) -> bool:
        return bool(self.session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _OVERDUE_LOCK}))

    def unfanned(self, limit: int) -> list[OutboxEvent]:
        return list(self.session.scalars(
            select(OutboxEvent).where(OutboxEvent.fanned_out.is_(False)).order_by(OutboxEvent.id).limit(limit)))

    def subscribers(self) -> list[Subscriber]:
        rows = self.session.execute(
            select(PartnerSystem.id, PartnerSystem.name, PartnerSystem.role, PartnerSystem.departments,
                   CallbackEndpoint.events)
            .join(CallbackEndpoint, CallbackEndpoint.system_pk == PartnerSystem.id)
            .where(PartnerSystem.enabled.is_(True))
        )
        return [Subscriber(pk, name, role, frozenset(deps) if deps is not None else None, events)
                for pk, name, role, deps, events in rows]

    def add_deliveries(self, rows: list[dict]) -> None:
        if rows:
            self.session.execute(insert(Delivery), rows)

    def mark_fanned_out(self, ids: Sequence[int]) -> None:
        self.session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(list(ids))).values(fanned_out=True))

    # --- delivery
    def claim(self, limit: int, token: str, margin_seconds: float) -> list[Claimed]:
        """Lease the due heads of their queues to ``token`` for one attempt's timeout and a
        margin; ``extend`` renews a lease just before its attempt."""
        claimed = [Claimed(**row._mapping) for row in self.session.execute(_CLAIM, {"limit": limit})]
        if claimed:
            seconds = max(float(c.timeout_seconds) for c in claimed) + margin_seconds
            self.session.execute(
                update(Delivery).where(Delivery.id.in_([c.id for c in claimed]))
                .values(lease_token=token, lease_until=func.now() + timedelta(seconds=seconds)))
        return claimed

    def extend(self, delivery_id: int, token: str, seconds: float) -> bool:
        """Renew the lease: False if another deliverer has it now."""
        return self.session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.lease_token == token)
            .values(lease_until=func.now() + timedelta(seconds=seconds))).rowcount == 1

    def relax_durability(self) -> None:
        """This transaction's commit need not wait for the disk: losing it in a crash only
        means a notification is sent once more, with its MessageId."""
        self.session.execute(text("SET LOCAL synchronous_commit TO off"))

    def finish(self, delivery_id: int, token: str, values: dict) -> bool:
        """Keep an attempt's outcome, if the lease is still ours."""
        return self.session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.lease_token == token)
            .values(attempts=Delivery.attempts + 1, updated_at=func.now(), lease_token=None, lease_until=None,
                    **values)).rowcount == 1

    def release(self, delivery_id: int, token: str) -> None:
        """Give back a leased delivery that was not attempted."""
        self.session.execute(
            update(Delivery).where(Delivery.id == delivery_id, Delivery.lease_token == token)
            .values(lease_token=None, lease_until=None))

    def record_attempts(self, records: list[dict]) -> None:
        if records:
            self.session.execute(insert(CallRecord), records)

    def receiver_failed(self, system_pk: int, at: datetime, error: str) -> int:
        """Count a failure; the streak after it (1: the receiver just started failing)."""
        return self.session.execute(
            update(CallbackEndpoint).where(CallbackEndpoint.system_pk == system_pk)
            .values(failure_streak=CallbackEndpoint.failure_streak + 1,
                    failing_since=func.coalesce(CallbackEndpoint.failing_since, at),
                    last_failure_at=at, last_error=error[:2000])
            .returning(CallbackEndpoint.failure_streak)
        ).scalar_one()

    def hold_receiver(self, system_pk: int, retry_at: datetime) -> None:
        """A receiver that cannot be reached gets nothing until ``retry_at``."""
        self.session.execute(
            update(CallbackEndpoint).where(CallbackEndpoint.system_pk == system_pk).values(retry_at=retry_at))

    def receiver_succeeded(self, system_pk: int, at: datetime, *, touch: bool) -> tuple[int, datetime] | None:
        """Clear a failing receiver's streak; (the streak, since when) if it had been failing.
        A healthy receiver's row is not locked (deliverer threads would queue on it); its
        last success is written only when ``touch``."""
        row = self.session.execute(_RECOVER, {"pk": system_pk, "at": at}).one_or_none()
        if row is None and touch:
            self.session.execute(update(CallbackEndpoint).where(CallbackEndpoint.system_pk == system_pk)
                                 .values(last_success_at=at))
        return (row.failure_streak, row.failing_since) if row is not None else None

    def streak(self, system_pk: int) -> int:
        return self.session.scalar(
            select(CallbackEndpoint.failure_streak).where(CallbackEndpoint.system_pk == system_pk)) or 0

    # --- administration
    def endpoint(self, system_pk: int) -> CallbackEndpoint | None:
        return self.session.scalars(
            select(CallbackEndpoint).where(CallbackEndpoint.system_pk == system_pk)).one_or_none()

    def add_endpoint(self, values: dict) -> None:
        self.session.add(CallbackEndpoint(**values))

    def remove_endpoint(self, system_pk: int) -> None:
        endpoint = self.endpoint(system_pk)
        if endpoint is not None:
            self.session.delete(endpoint)

    def fail_open(self, system_pk: int, reason: str) -> int:
        """The open deliveries of a receiver whose callback is removed: FAILED, visible."""
        return self.session.execute(
            update(Delivery).where(Delivery.system_pk == system_pk, Delivery.status.in_(OPEN))
            .values(status="FAILED", last_outcome="CALLBACK_REMOVED", last_error=reason, updated_at=func.now())
        ).rowcount

    def queues(self) -> list[dict]:
        counts = {
            (pk, status): (n, oldest)
            for pk, status, n, oldest in self.session.execute(
                select(Delivery.system_pk, Delivery.status, func.count(), func.min(Delivery.created_at))
                .group_by(Delivery.system_pk, Delivery.status))
        }
        result = []
        for system, endpoint in self.session.execute(
                select(PartnerSystem, CallbackEndpoint)
                .join(CallbackEndpoint, CallbackEndpoint.system_pk == PartnerSystem.id)
                .order_by(PartnerSystem.name)):
            row: dict[str, Any] = {
                "system": system.name, "role": system.role, "url": endpoint.url, "paused": endpoint.paused,
                "enabled": system.enabled, "events": endpoint.events,
                "failure_streak": endpoint.failure_streak, "failing_since": endpoint.failing_since,
                "retry_at": endpoint.retry_at, "last_success_at": endpoint.last_success_at,
                "last_failure_at": endpoint.last_failure_at, "last_error": endpoint.last_error,
            }
            for status in ("PENDING", "RETRYING", "FAILED", "DELIVERED"):
                row[status.lower()] = counts.get((system.id, status), (0, None))[0]
            oldest = [counts[(system.id, s)][1] for s in OPEN if (system.id, s) in counts]
            row["oldest_pending_at"] = min(oldest) if oldest else None
            result.append(row)
        return result

    def search(self, *, system_pk: int | None, status: str | None, application_no: str | None,
               limit: int) -> list[tuple[Delivery, OutboxEvent, str]]:
        stmt = (select(Delivery, OutboxEvent, PartnerSystem.name)
                .join(OutboxEvent, OutboxEvent.id == Delivery.event_pk)
                .join(PartnerSystem, PartnerSystem.id == Delivery.system_pk)
                .order_by(Delivery.id.desc()).limit(limit))
        if system_pk is not None:
            stmt = stmt.where(Delivery.system_pk == system_pk)
        if status:
            stmt = stmt.where(Delivery.status == status)
        if application_no:
            stmt = stmt.where(Delivery.application_no == application_no)
        return [tuple(row) for row in self.session.execute(stmt)]

    def get(self, delivery_id: int, *, for_update: bool = False) -> tuple[Delivery, OutboxEvent, str] | None:
        stmt = (select(Delivery, OutboxEvent, PartnerSystem.name)
                .join(OutboxEvent, OutboxEvent.id == Delivery.event_pk)
                .join(PartnerSystem, PartnerSystem.id == Delivery.system_pk)
                .where(Delivery.id == delivery_id))
        if for_update:
            stmt = stmt.with_for_update(of=Delivery)
        row = self.session.execute(stmt).one_or_none()
        return tuple(row) if row is not None else None

    def attempts(self, delivery_id: int) -> list[CallRecord]:
        return list(self.session.scalars(
            select(CallRecord).where(CallRecord.delivery_pk == delivery_id).order_by(CallRecord.id)))

    def reopen(self, delivery_pks: Sequence[int], expires_at: datetime) -> int:
        """FAILED deliveries sent again, with the same MessageId, from now on."""
        return self.session.execute(
            update(Delivery).where(Delivery.id.in_(list(delivery_pks)), Delivery.status == "FAILED")
            .values(status="PENDING", next_attempt_at=func.now(), expires_at=expires_at, updated_at=func.now())
        ).rowcount

    def failed_of(self, system_pk: int) -> list[int]:
        return list(self.session.scalars(
            select(Delivery.id).where(Delivery.system_pk == system_pk, Delivery.status == "FAILED")))

    def set_paused(self, system_pk: int, paused: bool) -> int:
        return self.session.execute(
            update(CallbackEndpoint).where(CallbackEndpoint.system_pk == system_pk)
            .values(paused=paused, updated_at=func.now())).rowcount

    def prune(self, before: datetime, batch: int) -> int:
        """Forget up to ``batch`` delivered notifications older than ``before``, and events
        no delivery refers to any more. FAILED and open ones stay. Their call records stay."""
        done = self.session.execute(text("""
            DELETE FROM deliveries WHERE id IN (
                SELECT id FROM deliveries WHERE status = 'DELIVERED' AND delivered_at < :before LIMIT :batch)
        """), {"before": before, "batch": batch}).rowcount
        self.session.execute(text("""
            DELETE FROM outbox_events e WHERE e.id IN (
                SELECT e2.id FROM outbox_events e2 WHERE e2.fanned_out AND e2.created_at < :before
                AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_pk = e2.id) LIMIT :batch)
        """), {"before": before, "batch": batch})
        return done

    def wake(self) -> None:
        """Tell listening deliverers to look now (at commit)."""
        self.session.execute(text("SELECT pg_notify('his_pacs_outbox', '')"))

    def expire_after(self, max_age: timedelta) -> datetime:
        return self.session.scalar(select(func.now())) + max_age
