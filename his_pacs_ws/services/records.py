"""Finding who sent what: the call record, as hospital IT searches it."""

from __future__ import annotations

from datetime import datetime

from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.db.records import CallFilter
from his_pacs_ws.services.common import in_batches

PRUNE_BATCH = 5000


def _summary(record) -> dict:
    return {
        "id": record.id, "at": record.at, "service": record.service, "caller": record.caller,
        "operation": record.operation, "message_id": record.message_id,
        "application_no": record.application_no, "patient_id": record.patient_id,
        "outcome": record.outcome, "fault_code": record.fault_code, "duration_ms": record.duration_ms,
        "replayed": record.replayed, "remote_addr": record.remote_addr,
        "direction": record.direction, "delivery_pk": record.delivery_pk,
    }


def search_calls(uow: UnitOfWork, **filters) -> list[dict]:
    with uow:
        return [_summary(r) for r in uow.calls.search(CallFilter(**filters))]


def show_call(uow: UnitOfWork, record_id: int) -> dict | None:
    with uow:
        record = uow.calls.get(record_id)
        if record is None:
            return None
        return {**_summary(record), "request_body": record.request_body, "response_body": record.response_body}


def prune_bodies(uow: UnitOfWork, before: datetime, batch: int = PRUNE_BATCH) -> int:
    """Drop old request and response bodies in batches (one short transaction each, so the
    service keeps writing records meanwhile); the metadata stays searchable."""
    return in_batches(uow, lambda u, n: u.calls.prune_bodies(before, n), batch)
