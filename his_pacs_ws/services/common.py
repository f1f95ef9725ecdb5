"""Shared pieces of the use cases: request fingerprints, JSON-safe values, result shapes."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from his_pacs_ws.db.models import RefundLine, StatusEvent
from his_pacs_ws.db.repositories import AnyApplication, ApplicationRow, LineWithRefunds, StoredApplication
from his_pacs_ws.domain.access import Caller
from his_pacs_ws.domain.billing import Item
from his_pacs_ws.domain.errors import ApplicationNotFound
from his_pacs_ws.domain.notifications import Notification
from his_pacs_ws.domain.status import PatientType, Status, his_status, is_locked
from his_pacs_ws.domain.timeline import Event, Source


def jsonable(value: Any, *, canonical: bool = False) -> Any:
    """Plain data to JSON-safe data: Decimal as exact strings, times in UTC ISO 8601.

    ``canonical`` writes equal numbers alike (1.5 and 1.50), for fingerprints.
    """
    if isinstance(value, dict):
        return {k: jsonable(v, canonical=canonical) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, canonical=canonical) for v in value]
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if canonical else str(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def fingerprint(*parts: Any) -> str:
    """A stable digest of a request's content, to tell a retry from a different request."""
    canonical = json.dumps(jsonable(list(parts), canonical=True), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def without(request: dict, *keys: str) -> dict:
    return {k: v for k, v in request.items() if k not in keys}


def in_batches(uow, step, batch: int) -> int:
    """Run ``step(uow, batch)`` in one short transaction after another until it does less
    than a batch (so a running server is never held up); the total it did."""
    total = 0
    while True:
        with uow:
            count = step(uow, batch)
            uow.commit()
        total += count
        if count < batch:
            return total


def now() -> datetime:
    return datetime.now(timezone.utc)


def staff(code: str | None, name: str | None) -> dict | None:
    return {"code": code, "name": name} if code is not None else None


def to_item(data: dict) -> Item:
    return Item(
        item_code=data["item_code"],
        item_name=data["item_name"],
        quantity=Decimal(data["quantity"]),
        unit_price=Decimal(data["unit_price"]),
        modality=data.get("modality"),
        body_part=data.get("body_part"),
        components=tuple(to_item(c) for c in data.get("components") or ()),
    )


def load_for_update(uow, application_no: str) -> ApplicationRow:
    """The application, row-locked for the rest of the transaction."""
    app = uow.applications.lock(application_no)
    if app is None:
        raise ApplicationNotFound(f"application {application_no} does not exist")
    return app


def load_for_pacs(uow, application_no: str, caller: Caller) -> ApplicationRow:
    """As load_for_update, but an application never released (paid or sent) does not exist
    for PACS, not even once cancelled: the registration clerk must not find the patient.
    A PACS serving some departments acts on theirs only."""
    app = load_for_update(uow, application_no)
    if app.released_at is None:
        raise ApplicationNotFound(f"application {application_no} does not exist")
    caller.check_department(app.executing_department_code, application_no)
    return app


def record_event(uow, app: AnyApplication, *, event: Event, status: Status, occurred_at, operator,
                 source: Source, origin: str | None, applied: bool = True, note: str | None = None,
                 room: str | None = None) -> None:
    """Add an event to the timeline; an applied one sets the application's status and
    tells the HIS systems. (The submission writes its own first event.)"""
    uow.applications.add_event(
        application_pk=app.id, event=event.value, status=status.value, applied=applied,
        occurred_at=occurred_at, operator_code=(operator or {}).get("code"),
        operator_name=(operator or {}).get("name"), source=source.value, note=note, room=room,
    )
    if applied:
        app.status = status.value
        app.updated_at = now()
        # The callback's fields: the state but its UpdatedAt (OccurredAt says when), and the event.
        emit(uow, Notification.APPLICATION_STATUS_CHANGED, app, {
            **without(application_state(app), "updated_at"), "event": event.value, "operator": operator, "source": source.value,
            "patient_id": app.patient_id, "note": note,
        }, origin=origin, occurred_at=occurred_at)


def emit(uow, kind: Notification, app: AnyApplication, payload: dict, *, origin: str | None,
         occurred_at: datetime) -> None:
    """Write a notification to the outbox, in the caller's transaction. Its id is its
    Sequence: every writer holds the application's row lock, so ids follow the changes."""
    uow.outbox.add_event({
        "kind": kind.value, "target_role": kind.receiver_role.value,
        "application_no": app.application_no, "patient_id": app.patient_id,
        "department_code": app.executing_department_code, "origin": origin,
        "payload": jsonable(payload), "occurred_at": occurred_at,
    })


def application_state(app: AnyApplication | StoredApplication) -> dict:
    status = Status(app.status)
    return {
        "application_no": app.application_no,
        "status": status.value,
        "his_status": his_status(status, PatientType(app.patient_type)),
        "locked": is_locked(status),
        "accession_no": app.accession_no,
        "updated_at": app.updated_at,
    }


def item_tree(rows) -> list[dict]:
    """Item rows (packages before their components) as items holding their components."""
    by_pk: dict[int, dict] = {}
    top: list[dict] = []
    for row in rows:
        node = {
            "item_code": row.item_code,
            "item_name": row.item_name,
            "quantity": row.quantity,
            "unit_price": row.unit_price,
            "modality": row.modality,
            "body_part": row.body_part,
            "components": None,
        }
        by_pk[row.id] = node
        if row.parent_pk is None:
            top.append(node)
        else:
            parent = by_pk[row.parent_pk]
            if parent["components"] is None:
                parent["components"] = []
            parent["components"].append(node)
    return top


def application_detail(app: AnyApplication, item_rows) -> dict:
    """Every field SubmitApplication took, as it was sent, plus the current state."""
    return {
        **application_state(app),
        "patient": app.patient_snapshot,
        "visit": app.visit_snapshot,
        "ordering_doctor": staff(app.ordering_doctor_code, app.ordering_doctor_name),
        "ordering_department_code": app.ordering_department_code,
        "ordering_department_name": app.ordering_department_name,
        "executing_department_code": app.executing_department_code,
        "executing_department_name": app.executing_department_name,
        "ordered_at": app.ordered_at,
        "items": item_tree(item_rows),
        "clinical_diagnosis": app.clinical_diagnosis,
        "clinical_history": app.clinical_history,
        "exam_purpose": app.exam_purpose,
        "priority": app.priority,
        "total_amount": app.total_amount,
        "paid_amount": app.paid_amount,
        "paid_at": app.paid_at,
        "invoice_no": app.invoice_no,
    }


def status_event(event: StatusEvent) -> dict:
    return {
        "status": event.status,
        "event": event.event,
        "occurred_at": event.occurred_at,
        "operator": staff(event.operator_code, event.operator_name),
        "source": event.source,
        "applied": event.applied,
        "note": event.note,
        "room": event.room,
    }


def charge_line(entry: LineWithRefunds) -> dict:
    line = entry.line
    return {
        "charge_id": str(line.id),
        "application_no": entry.application_no,
        "item_code": line.item_code,
        "item_name": line.item_name,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "amount": line.amount,
        "refunded_quantity": entry.refunded_quantity,
        "refunded_amount": entry.refunded_amount,
        "trigger": line.trigger,
        "charged_at": line.charged_at,
        "package_item_code": line.package_item_code,
    }


def refund_record(refund: RefundLine, refund_request_no: str | None) -> dict:
    return {
        "refund_request_no": refund_request_no,
        "charge_id": str(refund.charge_line_pk),
        "quantity": refund.quantity,
        "amount": refund.amount,
        "reason": refund.reason,
        "operator": staff(refund.operator_code, refund.operator_name),
        "refunded_at": refund.refunded_at,
        "source": refund.source,
    }
