"""Push mode's use cases: subscribing a partner's callback, fanning events out to the
receivers, and what hospital IT does with the queue (list, show, retry, pause)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.domain.access import Role
from his_pacs_ws.domain.notifications import CallbackPasswordType, DeliveryStatus, Notification, parse_events, receives
from his_pacs_ws.services.common import in_batches
from his_pacs_ws.services.secrets import SecretBox
from his_pacs_ws.services.systems import SystemCommandError, _get

FAN_OUT_BATCH = 500
MAX_TIMEOUT_SECONDS = 120


def set_callback(uow: UnitOfWork, box: SecretBox, name: str, *, url: str, events: str | None,
                 username: str | None, password: str | None, password_type: str,
                 timeout_seconds: float) -> None:
    """Where ``name`` receives its notifications (replacing an earlier setting)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemCommandError("--url must be an http:// or https:// address")
    if not 0 < timeout_seconds <= MAX_TIMEOUT_SECONDS:
        raise SystemCommandError(f"--timeout is between 0 and {MAX_TIMEOUT_SECONDS} seconds")
    if (username is None) != (password is None):
        raise SystemCommandError("--username and --password-stdin go together")
    if password_type not in {p.value for p in CallbackPasswordType}:
        raise SystemCommandError("--password-type is digest or text")
    with uow:
        system = _get(uow, name)
        try:
            checked = parse_events(events, Role(system.role))
        except ValueError as err:
            raise SystemCommandError(str(err)) from None
        uow.outbox.remove_endpoint(system.id)
        uow.session.flush()
        uow.outbox.add_endpoint({
            "system_pk": system.id, "url": url, "events": checked, "username": username,
            # bound to the receiving system's name, like its own password
            "secret": box.seal(password, f"callback:{name}") if password is not None else None,
            "password_type": password_type, "timeout_seconds": timeout_seconds, "paused": False,
            "failure_streak": 0,
        })
        uow.commit()


def callback_off(uow: UnitOfWork, name: str) -> int:
    """Stop delivering to ``name``; what was still waiting is FAILED (and can be retried
    once a callback is set again). The number of such deliveries."""
    with uow:
        system = _get(uow, name)
        if uow.outbox.endpoint(system.id) is None:
            raise SystemCommandError(f"system {name} has no callback")
        failed = uow.outbox.fail_open(system.id, "the callback was turned off")
        uow.outbox.remove_endpoint(system.id)
        uow.commit()
        return failed


def fan_out(uow: UnitOfWork, max_age: timedelta, *, batch: int = FAN_OUT_BATCH) -> int:
    """Turn up to ``batch`` new outbox events into deliveries, one per receiver subscribed
    now; the number of events handled (``batch``: there may be more). One fan-out runs at a
    time (in Sequence order); others skip it. With no receiver anywhere the events are only
    marked, in one statement: a callback set later receives what is fanned out after it."""
    with uow:
        if not uow.outbox.try_fan_out_lock():
            return 0
        subscribers = uow.outbox.subscribers()
        if not subscribers:
            skipped = uow.outbox.skip_unfanned(batch)
            uow.commit()
            return skipped
        events = uow.outbox.take_unfanned(batch)
        if not events:
            return 0
        expires = events[0].now + max_age
        rows = []
        for event in events:
            kind = Notification(event.kind)
            for sub in subscribers:
                if receives(kind, role=Role(sub.role), events=sub.events, departments=sub.departments,
                            department_code=event.department_code, receiver=sub.name, origin=event.origin):
                    rows.append({
                        "event_pk": event.id, "system_pk": sub.system_pk, "application_no": event.application_no,
                        "status": DeliveryStatus.PENDING.value, "priority": 0 if kind.critical else 1,
                        "attempts": 0, "next_attempt_at": event.created_at, "expires_at": expires,
                    })
        if rows:
            uow.outbox.add_deliveries(rows)
            uow.outbox.wake_senders()
        uow.commit()
        return len(events)


def _system_pk(uow: UnitOfWork, name: str | None) -> int | None:
    return _get(uow, name).id if name else None


def queues(uow: UnitOfWork) -> list[dict]:
    with uow:
        return uow.outbox.queues()


def _delivery(delivery, event, system: str) -> dict:
    return {
        "id": delivery.id, "system": system, "operation": event.kind, "message_id": message_id(event.id),
        "sequence": event.id, "application_no": event.application_no, "patient_id": event.patient_id,
        "status": delivery.status, "attempts": delivery.attempts, "occurred_at": event.occurred_at,
        "created_at": delivery.created_at, "next_attempt_at": delivery.next_attempt_at,
        "expires_at": delivery.expires_at, "delivered_at": delivery.delivered_at,
        "last_outcome": delivery.last_outcome, "last_http_status": delivery.last_http_status,
        "last_fault_code": delivery.last_fault_code, "last_error": delivery.last_error,
    }


def list_deliveries(uow: UnitOfWork, *, system: str | None = None, status: str | None = None,
                    application_no: str | None = None, limit: int = 100) -> list[dict]:
    if status is not None:
        DeliveryStatus(status)
    with uow:
        rows = uow.outbox.search(system_pk=_system_pk(uow, system), status=status,
                                 application_no=application_no, limit=limit)
        return [_delivery(*row) for row in rows]


def show_delivery(uow: UnitOfWork, delivery_id: int) -> dict:
    with uow:
        row = uow.outbox.get(delivery_id)
        if row is None:
            raise SystemCommandError(f"no delivery {delivery_id}")
        result = _delivery(*row)
        result["payload"] = row[1].payload
        result["attempts_made"] = [
            {"call_record": r.id, "at": r.at, "outcome": r.outcome, "fault_code": r.fault_code,
             "duration_ms": r.duration_ms, "request_body": r.request_body, "response_body": r.response_body}
            for r in uow.outbox.attempts(delivery_id)
        ]
        return result


def retry(uow: UnitOfWork, delivery_id: int, max_age: timedelta) -> dict:
    """Send a FAILED delivery again, with its MessageId, as if it were new."""
    with uow:
        row = uow.outbox.get(delivery_id, for_update=True)
        if row is None:
            raise SystemCommandError(f"no delivery {delivery_id}")
        if row[0].status != DeliveryStatus.FAILED.value:
            raise SystemCommandError(f"delivery {delivery_id} is {row[0].status}, not FAILED")
        if uow.outbox.endpoint(row[0].system_pk) is None:
            raise SystemCommandError(f"system {row[2]} has no callback: set one first")
        uow.outbox.reopen([delivery_id], uow.outbox.expire_after(max_age))
        uow.outbox.wake()
        uow.commit()
    return show_delivery(uow, delivery_id)


def retry_failed(uow: UnitOfWork, system: str, max_age: timedelta) -> int:
    with uow:
        pk = _get(uow, system).id
        if uow.outbox.endpoint(pk) is None:
            raise SystemCommandError(f"system {system} has no callback: set one first")
        count = uow.outbox.reopen(uow.outbox.failed_of(pk), uow.outbox.expire_after(max_age))
        uow.outbox.wake()
        uow.commit()
        return count


def set_paused(uow: UnitOfWork, system: str, paused: bool) -> None:
    """A paused receiver keeps its queue and gets nothing until resumed."""
    with uow:
        pk = _get(uow, system).id
        if not uow.outbox.set_paused(pk, paused):
            raise SystemCommandError(f"system {system} has no callback")
        if not paused:
            uow.outbox.wake()
        uow.commit()


def prune(uow: UnitOfWork, before, batch: int = 5000) -> int:
    """Delivered notifications older than ``before``, dropped in short transactions."""
    return in_batches(uow, lambda u, n: u.outbox.prune(before, n), batch)


def message_id(sequence: int) -> str:
    """A notification's MessageId: the same on every attempt and for every receiver."""
    return f"HPW-{sequence}"
