"""The message record: every call, searchable, bodies prunable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, defer

from his_pacs_ws.db.models import Application, CallRecord


@dataclass
class CallFilter:
    application_no: str | None = None
    patient_id: str | None = None
    message_id: str | None = None
    caller: str | None = None
    operation: str | None = None
    fault_code: str | None = None  # "*" for any fault
    since: datetime | None = None
    until: datetime | None = None
    direction: str | None = None  # 'in' (calls partners made) or 'out' (our deliveries to them)
    limit: int = 100


class CallRecordRepository:
    def __init__(self, session: Session):
        self.session = session

    def search(self, flt: CallFilter) -> list[CallRecord]:
        stmt = (
            select(CallRecord)
            .options(defer(CallRecord.request_body), defer(CallRecord.response_body))
            .order_by(CallRecord.at.desc(), CallRecord.id.desc())
            .limit(flt.limit)
        )
        if flt.patient_id:  # the calls naming the patient, and those about the patient's applications
            stmt = stmt.where(or_(
                CallRecord.patient_id == flt.patient_id,
                CallRecord.application_no.in_(
                    select(Application.application_no).where(Application.patient_id == flt.patient_id)),
            ))
        exact = {
            CallRecord.application_no: flt.application_no,
            CallRecord.message_id: flt.message_id,
            CallRecord.caller: flt.caller,
            CallRecord.operation: flt.operation,
            CallRecord.direction: flt.direction,
        }
        for column, value in exact.items():
            if value:
                stmt = stmt.where(column == value)
        if flt.fault_code == "*":
            stmt = stmt.where(CallRecord.fault_code.is_not(None))
        elif flt.fault_code:
            stmt = stmt.where(CallRecord.fault_code == flt.fault_code)
        if flt.since:
            stmt = stmt.where(CallRecord.at >= flt.since)
        if flt.until:
            stmt = stmt.where(CallRecord.at < flt.until)
        return list(self.session.scalars(stmt))

    def get(self, pk: int) -> CallRecord | None:
        return self.session.get(CallRecord, pk)

    def prune_bodies(self, before: datetime, batch: int) -> int:
        """Drop the bodies of up to ``batch`` records older than ``before``; keep the rest."""
        ids = (
            select(CallRecord.id)
            .where(CallRecord.at < before, CallRecord.request_body.is_not(None))
            .limit(batch)
            .scalar_subquery()
        )
        result = self.session.execute(
            update(CallRecord).where(CallRecord.id.in_(ids)).values(request_body=None, response_body=None)
        )
        return result.rowcount
