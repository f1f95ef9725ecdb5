"""Queries of the clinical half: reports, critical values, EMR documents and orders."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from his_pacs_ws.db.models import (
    Application,
    CriticalValue,
    EmrAccess,
    EmrDocument,
    EmrOrder,
    Patient,
    Visit,
)
from his_pacs_ws.db.raw import jsonb, raw
from his_pacs_ws.db.repositories import insert_returning_id


@dataclass(frozen=True)
class ReportRow:
    """A report version as read or written on the call path."""

    id: int
    application_pk: int
    report_no: str
    version: int
    result_status: str
    content_hash: str
    accession_no: str | None
    findings: str | None
    impression: str | None
    positive: bool | None
    reporting_doctor_code: str
    reporting_doctor_name: str
    reported_at: datetime
    verifying_doctor_code: str | None
    verifying_doctor_name: str | None
    verified_at: datetime | None
    study_instance_uid: str | None
    viewer_url: str | None
    image_urls: list | None
    pdf_url: str | None


_REPORT_COLUMNS = tuple(f.name for f in fields(ReportRow))
_LOCK_REPORT_NO = "SELECT pg_advisory_xact_lock(hashtext('report:' || %s))"
_VERSIONS = f"SELECT {', '.join(_REPORT_COLUMNS)} FROM reports WHERE report_no = %s ORDER BY version"
_ADD_REPORT = (f"INSERT INTO reports ({', '.join(_REPORT_COLUMNS[1:])}) "
               f"VALUES ({', '.join(['%s'] * (len(_REPORT_COLUMNS) - 1))}) RETURNING id")


class ReportRepository:
    def __init__(self, session: Session):
        self.session = session

    def lock(self, report_no: str) -> None:
        """A transaction lock on the report number (its rows may not exist yet)."""
        raw(self.session).one(_LOCK_REPORT_NO, (report_no,))

    def versions(self, report_no: str) -> list[ReportRow]:
        """Every version of a report, oldest first."""
        return [ReportRow(*values) for values in raw(self.session).all(_VERSIONS, (report_no,))]

    def add(self, **values: Any) -> ReportRow:
        params = [jsonb(values.get(c)) if c == "image_urls" and values.get(c) is not None else values.get(c)
                  for c in _REPORT_COLUMNS[1:]]
        row = raw(self.session).one(_ADD_REPORT, params)
        assert row is not None
        return ReportRow(row[0], *(values.get(c) for c in _REPORT_COLUMNS[1:]))

    def latest(self, *, application_pks: Sequence[int] | None = None, patient_id: str | None = None,
               statuses: Sequence[str] | None = None, reported_from: datetime | None = None,
               reported_to: datetime | None = None) -> list[tuple[ReportRow, str]]:
        """The latest version of each report in scope, newest report first, with its
        application number. Filters apply to that latest version. (The SQL holds only the
        conditions given: one prepared statement per combination.)"""
        scope: list[str] = ["true"]
        outer: list[str] = []
        params: dict[str, Any] = {}
        if application_pks is not None:
            scope.append("l.application_pk = ANY(%(application_pks)s)")
            params["application_pks"] = list(application_pks)
        if patient_id is not None:
            scope.append("la.patient_id = %(patient_id)s")
            params["patient_id"] = patient_id
        if statuses is not None:
            outer.append("r.result_status = ANY(%(statuses)s)")
            params["statuses"] = list(statuses)
        if reported_from:
            outer.append("r.reported_at >= %(reported_from)s")
            params["reported_from"] = reported_from
        if reported_to:
            outer.append("r.reported_at < %(reported_to)s")
            params["reported_to"] = reported_to
        sql = (f"SELECT {', '.join('r.' + c for c in _REPORT_COLUMNS)}, a.application_no "
               "FROM reports r JOIN applications a ON a.id = r.application_pk "
               "WHERE r.id IN (SELECT DISTINCT ON (l.report_no) l.id FROM reports l "
               f"JOIN applications la ON la.id = l.application_pk WHERE {' AND '.join(scope)} "
               "ORDER BY l.report_no, l.version DESC) "
               + "".join(f"AND {condition} " for condition in outer)
               + "ORDER BY r.reported_at DESC, r.id DESC")
        return [(ReportRow(*values[:-1]), values[-1]) for values in raw(self.session).all(sql, params)]


@dataclass
class CriticalValueFilter:
    statuses: Sequence[str] | None = None
    department_code: str | None = None
    patient_id: str | None = None
    application_no: str | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    overdue_at: datetime | None = None  # only values overdue as of this time
    departments: Sequence[str] | None = None  # a caller restricted to these departments
    limit: int | None = 1000


class CriticalValueRepository:
    def __init__(self, session: Session):
        self.session = session

    def claim(self, values: dict) -> int | None:
        return insert_returning_id(self.session, CriticalValue, values, ["critical_value_no"])

    def get(self, number: str, *, for_update: bool = False) -> CriticalValue | None:
        stmt = select(CriticalValue).where(CriticalValue.critical_value_no == number)
        if for_update:  # and read again: a plain get earlier in the transaction may be stale
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).one_or_none()

    def lock(self, pk: int) -> CriticalValue:
        return self.session.scalars(select(CriticalValue).where(CriticalValue.id == pk).with_for_update()
                                    .execution_options(populate_existing=True)).one()

    def overdue(self, at, limit: int) -> list[tuple[int, int]]:
        """(id, application id) of values past their deadline, unreceived, not yet escalated."""
        return [tuple(row) for row in self.session.execute(
            select(CriticalValue.id, CriticalValue.application_pk)
            .where(CriticalValue.status == "RAISED", CriticalValue.ack_deadline < at,
                   CriticalValue.overdue_notified_at.is_(None))
            .order_by(CriticalValue.ack_deadline).limit(limit))]

    def get_by_pk(self, pk: int) -> CriticalValue:
        return self.session.get_one(CriticalValue, pk)

    def search(self, flt: CriticalValueFilter) -> list[tuple[CriticalValue, str]]:
        stmt = (
            select(CriticalValue, Application.application_no)
            .join(Application, Application.id == CriticalValue.application_pk)
            .order_by(CriticalValue.reported_at.desc(), CriticalValue.id.desc())
            .limit(flt.limit)
        )
        if flt.statuses:
            stmt = stmt.where(CriticalValue.status.in_(list(flt.statuses)))
        if flt.department_code:
            stmt = stmt.where(CriticalValue.department_code == flt.department_code)
        if flt.patient_id:
            stmt = stmt.where(CriticalValue.patient_id == flt.patient_id)
        if flt.application_no:
            stmt = stmt.where(Application.application_no == flt.application_no)
        if flt.reported_from:
            stmt = stmt.where(CriticalValue.reported_at >= flt.reported_from)
        if flt.reported_to:
            stmt = stmt.where(CriticalValue.reported_at < flt.reported_to)
        if flt.overdue_at is not None:
            stmt = stmt.where(
                func.coalesce(CriticalValue.received_at, CriticalValue.revoked_at, flt.overdue_at)
                > CriticalValue.ack_deadline
            )
        if flt.departments is not None:
            stmt = stmt.where(Application.executing_department_code.in_(list(flt.departments)))
        return [(cv, no) for cv, no in self.session.execute(stmt)]


class EmrRepository:
    def __init__(self, session: Session):
        self.session = session

    def patient(self, patient_id: str) -> Patient | None:
        return self.session.scalars(select(Patient).where(Patient.patient_id == patient_id)).one_or_none()

    def ensure_patient(self, patient_id: str) -> int:
        """The patient's row, created bare if HIS publishes records before any application."""
        pk = insert_returning_id(self.session, Patient, {"patient_id": patient_id}, ["patient_id"])
        return pk if pk is not None else self.patient(patient_id).id

    def visit(self, visit_no: str) -> Visit | None:
        return self.session.scalars(select(Visit).where(Visit.visit_no == visit_no)).one_or_none()

    def visits_of(self, patient_pk: int) -> list[Visit]:
        """Newest first: by VisitAt, else by when the visit was first recorded."""
        return list(self.session.scalars(
            select(Visit).where(Visit.patient_pk == patient_pk)
            .order_by(func.coalesce(Visit.visit_at, Visit.created_at).desc(), Visit.id.desc())
        ))

    def document(self, document_id: str, *, for_update: bool = False) -> EmrDocument | None:
        stmt = select(EmrDocument).where(EmrDocument.document_id == document_id)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def order(self, order_no: str, *, for_update: bool = False) -> EmrOrder | None:
        stmt = select(EmrOrder).where(EmrOrder.order_no == order_no)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def insert_document(self, values: dict) -> int | None:
        return insert_returning_id(self.session, EmrDocument, values, ["document_id"])

    def insert_order(self, values: dict) -> int | None:
        return insert_returning_id(self.session, EmrOrder, values, ["order_no"])

    def flush(self) -> None:
        self.session.flush()

    def documents(self, visit_pks: Sequence[int], *, types: Sequence[str] | None,
                  recorded_from: datetime | None, recorded_to: datetime | None,
                  limit: int) -> list[EmrDocument]:
        """The newest ``limit`` documents of these visits (the caller orders them)."""
        stmt = (
            select(EmrDocument)
            .where(EmrDocument.visit_pk.in_(list(visit_pks)))
            .order_by(EmrDocument.recorded_at.desc(), EmrDocument.id.desc())
            .limit(limit)
        )
        if types:
            stmt = stmt.where(EmrDocument.document_type.in_(list(types)))
        if recorded_from:
            stmt = stmt.where(EmrDocument.recorded_at >= recorded_from)
        if recorded_to:
            stmt = stmt.where(EmrDocument.recorded_at < recorded_to)
        return list(self.session.scalars(stmt))

    def orders(self, visit_pks: Sequence[int], *, ordered_from: datetime | None,
               ordered_to: datetime | None) -> list[EmrOrder]:
        stmt = (
            select(EmrOrder)
            .where(EmrOrder.visit_pk.in_(list(visit_pks)))
            .order_by(EmrOrder.ordered_at, EmrOrder.id)
        )
        if ordered_from:
            stmt = stmt.where(EmrOrder.ordered_at >= ordered_from)
        if ordered_to:
            stmt = stmt.where(EmrOrder.ordered_at < ordered_to)
        return list(self.session.scalars(stmt))

    def record_access(self, **values: Any) -> None:
        self.session.add(EmrAccess(**values))
