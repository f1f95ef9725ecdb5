"""What each change tells the partners: outbox events written in the use case's own
transaction, so a committed change always has its notification and a fault has none.

Each event carries the current state of what it is about (not a diff), as the callback
request's fields; the deliverer adds MessageId and Sequence (the event's id)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.db.models import RefundLine
from his_pacs_ws.db.repositories import AnyApplication, LineWithRefunds
from his_pacs_ws.domain.notifications import Notification
from his_pacs_ws.services.common import (
    application_detail,
    charge_line,
    emit,
    refund_record,
)


def released(uow: UnitOfWork, app: AnyApplication, *, origin: str | None) -> None:
    """PACS learns of a paid or sent application: everything its worklist needs."""
    detail = application_detail(app, uow.applications.items([app.id])[app.id])
    assert app.released_at is not None  # called as it is released
    emit(uow, Notification.APPLICATION_RELEASED, app, {"application": detail},
         origin=origin, occurred_at=app.released_at)


def cancelled(uow: UnitOfWork, app: AnyApplication, *, reason: str, operator: dict | None,
              occurred_at: datetime, origin: str | None) -> None:
    """Only an application PACS could see is cancelled for PACS."""
    if app.released_at is None:
        return
    detail = application_detail(app, uow.applications.items([app.id])[app.id])
    emit(uow, Notification.APPLICATION_CANCELLED, app,
         {"application": detail, "reason": reason, "operator": operator},
         origin=origin, occurred_at=occurred_at)


def charges_posted(uow: UnitOfWork, app: AnyApplication, *, lines: list[LineWithRefunds],
                   refunds: list[tuple[RefundLine, str | None]], occurred_at: datetime,
                   origin: str | None) -> None:
    """The HIS bills (or unbills) its inpatient account: the lines and refund lines just
    written, with the application's totals after them."""
    if not lines and not refunds:
        return
    ledger = uow.ledger.lines(app.id)
    visit = app.visit_snapshot or {}
    emit(uow, Notification.CHARGES_POSTED, app, {
        "application_no": app.application_no,
        "patient_id": app.patient_id,
        "visit_no": visit.get("visit_no"),
        "inpatient_no": visit.get("inpatient_no"),
        "charges": [charge_line(c) for c in lines],
        "refunds": [refund_record(r, no) for r, no in refunds],
        "total_charged": sum((e.line.amount for e in ledger), Decimal("0.00")),
        "total_refunded": sum((e.refunded_amount for e in ledger), Decimal("0.00")),
    }, origin=origin, occurred_at=occurred_at)


def report_published(uow: UnitOfWork, app: AnyApplication, report: dict, *, occurred_at: datetime,
                     origin: str | None) -> None:
    emit(uow, Notification.REPORT_PUBLISHED, app, {"report": report, "patient_id": app.patient_id},
         origin=origin, occurred_at=occurred_at)


def critical_value(uow: UnitOfWork, kind: Notification, app: AnyApplication, record: dict, *,
                   occurred_at: datetime, origin: str | None) -> None:
    emit(uow, kind, app, {"critical_value": record}, origin=origin, occurred_at=occurred_at)
