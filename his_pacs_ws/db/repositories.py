"""Queries the use cases need, so that only this package speaks SQLAlchemy."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import lru_cache
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import Engine, and_, bindparam, exists, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from his_pacs_ws.db.raw import Raw, jsonb, raw
from his_pacs_ws.db.models import (
    Application,
    CallRecord,
    ChargeLine,
    ChargeRequest,
    ProcessedMessage,
    RefundLine,
    RefundRequest,
    StatusEvent,
    Visit,
)
from his_pacs_ws.domain.timeline import UNDOING, Event, Source

log = logging.getLogger(__name__)


_MILLI, _FEN = Decimal("0.001"), Decimal("0.01")  # the scales of QUANTITY and MONEY
_UNDO_EVENTS = tuple(event.value for event in UNDOING)


@lru_cache(maxsize=None)
def _insert_or_nothing(model, conflict: tuple[str, ...], returning):
    # Built once: statements executed with parameters reuse SQLAlchemy's compiled cache. On
    # the table, not the class: a Core INSERT skips the ORM's bulk-insert bookkeeping.
    table = model.__table__
    return insert(table).on_conflict_do_nothing(index_elements=list(conflict)).returning(table.c[returning])


def insert_returning_id(session: Session, model, values: dict, conflict: list[str], *, returning=None):
    """INSERT ... ON CONFLICT DO NOTHING: the new row's id, or None when the key exists.

    On a conflict with a transaction still in flight, PostgreSQL waits for it to end, so a
    racing duplicate sees the winner's committed row.
    """
    stmt = _insert_or_nothing(model, tuple(conflict), "id" if returning is None else returning.key)
    return session.execute(stmt, values).scalar_one_or_none()


_EVENT_COLUMNS = ("application_pk", "event", "status", "applied", "occurred_at", "operator_code",
                  "operator_name", "source", "note", "room")
_ADD_EVENT = (f"INSERT INTO status_events ({', '.join(_EVENT_COLUMNS)}) "
              f"VALUES ({', '.join(['%s'] * len(_EVENT_COLUMNS))})")


_PATIENT_COLUMNS = ("patient_id", "name", "sex", "birth_date", "id_card_no", "phone")
_VISIT_COLUMNS = ("visit_no", "patient_type", "visit_at", "inpatient_no", "ward_code", "ward_name",
                  "bed_no", "department_code", "department_name", "diagnosis")
_SUBMITTED_COLUMNS = (
    "application_no", "request_hash", "status", "patient_id", "patient_name", "patient_type",
    "patient_snapshot", "visit_snapshot", "ordering_doctor_code", "ordering_doctor_name",
    "ordering_department_code", "ordering_department_name", "executing_department_code",
    "executing_department_name", "ordered_at", "clinical_diagnosis", "clinical_history",
    "exam_purpose", "priority", "total_amount")
_ITEM_RECORD = ("item_code text, item_name text, quantity numeric, unit_price numeric, modality text, "
                "body_part text")
_ITEM_VALUES = "i.item_code, i.item_name, i.quantity, i.unit_price, i.modality, i.body_part"


def _keep_stored(table: str, columns: Sequence[str]) -> str:
    return ", ".join(f"{c} = coalesce(EXCLUDED.{c}, {table}.{c})" for c in columns)


# One round trip for what the ORM did in six: each part runs only if the one before it
# produced a row (no existing application -> patient -> visit of that patient -> the
# application -> its items and event). The answer says which stage stopped it.
_SUBMIT = f"""
WITH existing AS (
    SELECT 1 FROM applications WHERE application_no = %(application_no)s
), patient AS (
    INSERT INTO patients AS p ({", ".join(_PATIENT_COLUMNS)})
    SELECT {", ".join(f"%(p_{c})s" for c in _PATIENT_COLUMNS)} WHERE NOT EXISTS (SELECT 1 FROM existing)
    ON CONFLICT (patient_id) DO UPDATE SET {_keep_stored("p", _PATIENT_COLUMNS[1:])}, updated_at = now()
    RETURNING p.id
), visit AS (
    INSERT INTO visits AS v (patient_pk, {", ".join(_VISIT_COLUMNS)})
    SELECT patient.id, {", ".join(f"%(v_{c})s" for c in _VISIT_COLUMNS)} FROM patient
    ON CONFLICT (visit_no) DO UPDATE SET {_keep_stored("v", _VISIT_COLUMNS[1:])}, updated_at = now()
        WHERE v.patient_pk = EXCLUDED.patient_pk
    RETURNING v.id, v.patient_pk
), application AS (
    INSERT INTO applications (patient_pk, visit_pk, {", ".join(_SUBMITTED_COLUMNS)})
    SELECT visit.patient_pk, visit.id, {", ".join(f"%({c})s" for c in _SUBMITTED_COLUMNS)} FROM visit
    ON CONFLICT (application_no) DO NOTHING
    RETURNING id, application_no, status, patient_type, accession_no, updated_at
), top AS (
    INSERT INTO application_items (application_pk, parent_pk, position, item_code, item_name, quantity,
                                   unit_price, modality, body_part)
    SELECT application.id, NULL, i.position, {_ITEM_VALUES}
    FROM application, jsonb_to_recordset(%(items)s) AS i(position int, {_ITEM_RECORD})
    RETURNING id, position
), components AS (
    INSERT INTO application_items (application_pk, parent_pk, position, item_code, item_name, quantity,
                                   unit_price, modality, body_part)
    SELECT application.id, top.id, i.position, {_ITEM_VALUES}
    FROM application, jsonb_to_recordset(%(components)s) AS i(parent int, position int, {_ITEM_RECORD})
    JOIN top ON top.position = i.parent
), event AS (
    INSERT INTO status_events (application_pk, event, status, applied, occurred_at, operator_code,
                               operator_name, source)
    SELECT application.id, '{Event.SUBMITTED.value}', application.status, true, %(ordered_at)s, %(operator_code)s,
           %(operator_name)s, '{Source.HIS.value}'
    FROM application
)
SELECT EXISTS (SELECT 1 FROM existing), EXISTS (SELECT 1 FROM visit), a.id, a.application_no,
       a.status, a.patient_type, a.accession_no, a.updated_at
FROM (SELECT 1) AS answer LEFT JOIN application AS a ON true
"""


def jsonable_items(rows: list[dict]) -> list[dict]:
    """Rows as JSON for jsonb_to_recordset: amounts as exact strings, times in ISO 8601
    with their offset."""
    return [{k: _json_value(v) for k, v in row.items()} for row in rows]


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


class ApplicationRow:
    """An application read under its row lock for a change: its columns as attributes.
    What the use case sets is written back in one UPDATE that goes with the COMMIT, so
    a change costs no ORM unit of work and no round trip of its own."""

    id: int
    application_no: str
    request_hash: str
    status: str
    patient_pk: int
    visit_pk: int
    patient_id: str
    patient_name: str
    patient_type: str
    patient_snapshot: dict
    visit_snapshot: dict
    ordering_doctor_code: str
    ordering_doctor_name: str
    ordering_department_code: str
    ordering_department_name: str | None
    executing_department_code: str
    executing_department_name: str | None
    ordered_at: datetime
    clinical_diagnosis: str | None
    clinical_history: str | None
    exam_purpose: str | None
    priority: str | None
    total_amount: Decimal
    accession_no: str | None
    charge_point: str | None
    released_at: datetime | None
    paid_amount: Decimal | None
    paid_at: datetime | None
    invoice_no: str | None
    created_at: datetime
    updated_at: datetime

    COLUMNS: tuple[str, ...] = ()  # set below, from the table

    def __init__(self, values: Sequence[Any]):
        object.__setattr__(self, "_changed", {})
        for column, value in zip(self.COLUMNS, values):
            object.__setattr__(self, column, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.COLUMNS or name == "id":
            raise AttributeError(f"applications has no writable column {name}")
        object.__setattr__(self, name, value)
        self._changed[name] = value

    def write_back(self) -> tuple[str, list] | None:
        """The UPDATE for what was set since it was read (or written back), if anything."""
        changed: dict = self._changed
        if not changed:
            return None
        columns = sorted(changed)
        sql = f"UPDATE applications SET {', '.join(f'{c} = %s' for c in columns)} WHERE id = %s"
        params = [changed[c] for c in columns] + [self.id]
        changed.clear()
        return sql, params


ApplicationRow.COLUMNS = tuple(column.key for column in Application.__table__.columns if column.key != "change_no")
_LOCK_APPLICATION = (f"SELECT {', '.join(ApplicationRow.COLUMNS)} FROM applications "
                     "WHERE application_no = %s FOR UPDATE")
AnyApplication = Application | ApplicationRow


@dataclass(frozen=True)
class ItemRow:
    """An ordered item as read on the call path."""

    id: int
    application_pk: int
    parent_pk: int | None
    position: int
    item_code: str
    item_name: str
    quantity: Decimal
    unit_price: Decimal
    modality: str | None
    body_part: str | None


_ITEMS = (f"SELECT {', '.join(f.name for f in fields(ItemRow))} FROM application_items "
          "WHERE application_pk = ANY(%s) ORDER BY application_pk, parent_pk NULLS FIRST, position")
_LATEST_EVENT_AT = f"""
SELECT max(occurred_at) FROM status_events
WHERE application_pk = %(pk)s AND source = '{Source.PACS.value}'
  AND ((event = ANY(%(undo)s) AND applied) OR (status = ANY(%(forward)s) AND event <> ALL(%(all_undo)s)))
"""


@dataclass(frozen=True)
class StoredApplication:
    """What a submission's answer needs of the row it inserted."""

    id: int
    application_no: str
    status: str
    patient_type: str
    accession_no: str | None
    updated_at: datetime


@dataclass(frozen=True)
class Submitted:
    existed: bool  # the ApplicationNo was there already: nothing was written
    visit_ok: bool  # False: the visit belongs to another patient (roll back)
    application: StoredApplication | None  # None: existed, or inserted by a racing request


@dataclass
class ApplicationFilter:
    statuses: Sequence[str]
    executing_department_code: str | None = None
    modality: str | None = None
    patient_id: str | None = None
    patient_name: str | None = None
    application_no: str | None = None
    accession_no: str | None = None
    ordered_from: datetime | None = None
    ordered_to: datetime | None = None
    departments: Sequence[str] | None = None  # a caller restricted to these departments


class ApplicationRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, application_no: str) -> Application | None:
        """The application, to read (lock() is for a change)."""
        return self.session.scalars(select(Application).where(Application.application_no == application_no)).one_or_none()

    def lock(self, application_no: str) -> ApplicationRow | None:
        """The application under its row lock, for a change. Every change to an
        application, its status or its ledger takes this lock first: a cancel racing a
        registration, or two refunds of one line, serialize. What the caller sets on the
        row is written back with the commit."""
        sql = raw(self.session)
        values = sql.one(_LOCK_APPLICATION, (application_no,))
        if values is None:
            return None
        row = ApplicationRow(values)

        def write_back() -> None:
            if update := row.write_back():
                sql.defer(*update)

        sql.before_commit.append(write_back)
        return row

    def get_by_pk(self, pk: int) -> Application:
        return self.session.get_one(Application, pk)

    def upsert_visit(self, values: dict) -> tuple[int, int]:
        """Insert or update a visit: (its id, the patient it belongs to). A visit never moves
        to another patient: the caller compares and refuses."""
        updates = {k: v for k, v in values.items() if k not in ("visit_no", "patient_pk") and v is not None}
        updates["updated_at"] = func.now()
        visits = Visit.__table__
        stmt = (
            insert(visits).values(**values)
            .on_conflict_do_update(index_elements=["visit_no"], set_=updates,
                                   where=visits.c.patient_pk == values["patient_pk"])
            .returning(visits.c.id, visits.c.patient_pk)
        )
        row = self.session.execute(stmt).one_or_none()
        if row is None:  # the visit exists for another patient: report its owner
            row = self.session.execute(
                select(Visit.id, Visit.patient_pk).where(Visit.visit_no == values["visit_no"])).one()
        return row.id, row.patient_pk

    def submit(self, values: dict, patient: dict, visit: dict, items: Sequence[dict]) -> "Submitted":
        """A new application in one statement: unless ``values["application_no"]`` exists,
        upsert its patient and visit (a value not given keeps what is stored; a visit
        never moves to another patient), insert it with its items and its first event."""
        tops = [{"position": n, **_item_columns(item)} for n, item in enumerate(items)]
        components = [{"parent": n, "position": sub, **_item_columns(component)}
                      for n, item in enumerate(items) for sub, component in enumerate(item.get("components") or ())]
        row = raw(self.session).one(_SUBMIT, {
            **{f"p_{k}": patient.get(k) for k in _PATIENT_COLUMNS},
            **{f"v_{k}": visit.get(k) for k in _VISIT_COLUMNS},
            **{k: values.get(k) for k in _SUBMITTED_COLUMNS},
            "patient_snapshot": jsonb(values["patient_snapshot"]), "visit_snapshot": jsonb(values["visit_snapshot"]),
            "items": jsonb(jsonable_items(tops)), "components": jsonb(jsonable_items(components)),
            "operator_code": values["ordering_doctor_code"], "operator_name": values["ordering_doctor_name"],
        })
        assert row is not None  # the statement always answers one row
        existed, visit_ok, *stored = row
        return Submitted(existed=existed, visit_ok=visit_ok,
                         application=StoredApplication(*stored) if stored[0] is not None else None)

    def add_event(self, **values: Any) -> None:
        """A timeline entry, written with the COMMIT (read back only by later calls)."""
        raw(self.session).defer(_ADD_EVENT, [values[c] for c in _EVENT_COLUMNS])

    def timeline(self, application_pk: int) -> list[StatusEvent]:
        return list(
            self.session.scalars(
                select(StatusEvent)
                .where(StatusEvent.application_pk == application_pk)
                .order_by(StatusEvent.id)
            )
        )

    def latest_event_at(self, application_pk: int, *, undo_events: Sequence[str],
                        forward_statuses: Sequence[str]) -> datetime | None:
        """When the latest PACS event of these kinds happened: applied undo events, or
        forward events (applied or stale) leading to these statuses."""
        if not undo_events and not forward_statuses:
            return None
        row = raw(self.session).one(_LATEST_EVENT_AT, {
            "pk": application_pk, "undo": list(undo_events), "forward": list(forward_statuses),
            "all_undo": list(_UNDO_EVENTS)})
        return row[0] if row else None

    def search(self, flt: ApplicationFilter, *, after_pk: int, limit: int) -> list[ApplicationRow]:
        """Released applications matching the filter, by id after ``after_pk``. The SQL holds
        only the conditions given (one prepared statement per combination, each planned
        for the index it can use)."""
        conditions = ["status = ANY(%(statuses)s)", "released_at IS NOT NULL", "id > %(after_pk)s"]
        params: dict[str, Any] = {"statuses": list(flt.statuses), "after_pk": after_pk, "limit": limit}
        for column in ("executing_department_code", "patient_id", "application_no", "accession_no",
                       "patient_name"):
            if value := getattr(flt, column):
                conditions.append(f"{column} = %({column})s")
                params[column] = value
        if flt.modality:
            conditions.append("id IN (SELECT application_pk FROM application_items WHERE modality = %(modality)s)")
            params["modality"] = flt.modality
        if flt.ordered_from:
            conditions.append("ordered_at >= %(ordered_from)s")
            params["ordered_from"] = flt.ordered_from
        if flt.ordered_to:
            conditions.append("ordered_at < %(ordered_to)s")
            params["ordered_to"] = flt.ordered_to
        if flt.departments is not None:
            conditions.append("executing_department_code = ANY(%(departments)s)")
            params["departments"] = list(flt.departments)
        sql = (f"SELECT {', '.join(ApplicationRow.COLUMNS)} FROM applications WHERE {' AND '.join(conditions)} "
               "ORDER BY id LIMIT %(limit)s")
        return [ApplicationRow(values) for values in raw(self.session).all(sql, params)]

    def patient_has_application_in(self, patient_pk: int, departments: Sequence[str]) -> bool:
        return self.session.scalar(
            select(func.count()).select_from(Application).where(
                Application.patient_pk == patient_pk,
                Application.executing_department_code.in_(list(departments)),
                Application.released_at.is_not(None),
            )
        ) > 0

    def items(self, application_pks: Sequence[int]) -> dict[int, list[ItemRow]]:
        """The items of these applications in one query, packages before their components.
        Items never change once submitted: one application's are read once per unit of
        work (charging and notifying a release both need them)."""
        cache: dict[int, list[ItemRow]] = self.session.info.setdefault("items", {})
        if len(application_pks) == 1 and application_pks[0] in cache:
            return {application_pks[0]: cache[application_pks[0]]}
        result = self._read_items(application_pks)
        if len(application_pks) == 1:
            cache.update(result)
        return result

    def _read_items(self, application_pks: Sequence[int]) -> dict[int, list[ItemRow]]:
        result: dict[int, list[ItemRow]] = {pk: [] for pk in application_pks}
        if not application_pks:
            return result
        for values in raw(self.session).all(_ITEMS, (list(application_pks),)):
            row = ItemRow(*values)
            result[row.application_pk].append(row)
        return result


def _item_columns(item: dict) -> dict:
    return {
        "item_code": item["item_code"],
        "item_name": item["item_name"],
        "quantity": item["quantity"],
        "unit_price": item["unit_price"],
        "modality": item.get("modality"),
        "body_part": item.get("body_part"),
    }


@dataclass(frozen=True)
class ChargeRow:
    """A charge line as read or written on the call path (the ORM's ChargeLine elsewhere)."""

    id: int
    application_pk: int
    charge_request_pk: int | None
    item_code: str
    item_name: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    trigger: str
    package_item_code: str | None
    operator_code: str | None
    operator_name: str | None
    charged_at: datetime


_CHARGE_COLUMNS = tuple(f.name for f in fields(ChargeRow))
_CHARGE_RECORD = ("charge_request_pk bigint, item_code text, item_name text, quantity numeric, unit_price numeric, "
                  "amount numeric, trigger text, package_item_code text, operator_code text, operator_name text, "
                  "charged_at timestamptz")
_ADD_LINES = f"""
INSERT INTO charge_lines ({", ".join(_CHARGE_COLUMNS[1:])})
SELECT %s, {", ".join(c for c in _CHARGE_COLUMNS[2:])}
FROM ROWS FROM (jsonb_to_recordset(%s) AS ({_CHARGE_RECORD})) WITH ORDINALITY
     AS l({", ".join(_CHARGE_COLUMNS[2:])}, n)
ORDER BY n
RETURNING {", ".join(_CHARGE_COLUMNS)}
"""
# The refunds of each line through its index, not an aggregate of the whole refund table.
_LINES = f"""
SELECT {", ".join("c." + c for c in _CHARGE_COLUMNS)}, a.application_no,
       coalesce(r.quantity, 0), coalesce(r.amount, 0)
FROM charge_lines c JOIN applications a ON a.id = c.application_pk
LEFT JOIN LATERAL (SELECT sum(quantity) AS quantity, sum(amount) AS amount FROM refund_lines
                   WHERE charge_line_pk = c.id) r ON true
WHERE c.application_pk = %(application_pk)s
  AND (%(ids)s::bigint[] IS NULL OR c.id = ANY(%(ids)s::bigint[]))
  AND (%(charge_request_pk)s::bigint IS NULL OR c.charge_request_pk = %(charge_request_pk)s::bigint)
ORDER BY c.id
"""


@dataclass(frozen=True)
class LineWithRefunds:
    line: ChargeLine | ChargeRow
    application_no: str
    refunded_quantity: Decimal
    refunded_amount: Decimal


class LedgerRepository:
    def __init__(self, session: Session):
        self.session = session

    def add_refund(self, **values: Any) -> RefundLine:
        refund = RefundLine(**values)
        self.session.add(refund)
        return refund

    def flush(self) -> None:
        self.session.flush()

    def _lines_query(self):
        refunded = (
            select(
                RefundLine.charge_line_pk,
                func.sum(RefundLine.quantity).label("quantity"),
                func.sum(RefundLine.amount).label("amount"),
            )
            .group_by(RefundLine.charge_line_pk)
            .subquery()
        )
        return (
            select(
                ChargeLine,
                Application.application_no,
                func.coalesce(refunded.c.quantity, 0),
                func.coalesce(refunded.c.amount, 0),
            )
            .join(Application, Application.id == ChargeLine.application_pk)
            .outerjoin(refunded, refunded.c.charge_line_pk == ChargeLine.id)
            .order_by(ChargeLine.id)
        )

    def _run(self, stmt) -> list[LineWithRefunds]:
        return [
            LineWithRefunds(line, no, Decimal(qty).quantize(_MILLI), Decimal(amount).quantize(_FEN))
            for line, no, qty, amount in self.session.execute(stmt)
        ]

    def add_lines(self, application_pk: int, lines: Sequence[dict]) -> list[ChargeRow]:
        """Charge lines in one statement, as stored, in the order given."""
        if not lines:
            return []
        rows = raw(self.session).all(_ADD_LINES, (application_pk, jsonb(jsonable_items(list(lines)))))
        return sorted((ChargeRow(*row) for row in rows), key=lambda line: line.id)

    def lines(self, application_pk: int, *, ids: Iterable[int] | None = None,
              charge_request_pk: int | None = None) -> list[LineWithRefunds]:
        """An application's lines with what was refunded of each (optionally only these
        ids, or one charge request's)."""
        self.session.flush()  # refunds added through the ORM count
        rows = raw(self.session).all(_LINES, {
            "application_pk": application_pk, "ids": None if ids is None else list(ids),
            "charge_request_pk": charge_request_pk})
        width = len(_CHARGE_COLUMNS)
        return [LineWithRefunds(ChargeRow(*row[:width]), row[width], Decimal(row[width + 1]).quantize(_MILLI),
                                Decimal(row[width + 2]).quantize(_FEN)) for row in rows]

    def lines_for(self, scope: LedgerScope, *, charged_from: datetime | None,
                  charged_to: datetime | None) -> list[LineWithRefunds]:
        stmt = self._lines_query().where(scope.condition())
        if charged_from:
            stmt = stmt.where(ChargeLine.charged_at >= charged_from)
        if charged_to:
            stmt = stmt.where(ChargeLine.charged_at < charged_to)
        return self._run(stmt)

    def refunds_for(self, scope: LedgerScope, *, refunded_from: datetime | None,
                    refunded_to: datetime | None) -> list[tuple[RefundLine, str | None]]:
        stmt = (
            select(RefundLine, RefundRequest.refund_request_no)
            .join(ChargeLine, ChargeLine.id == RefundLine.charge_line_pk)
            .join(Application, Application.id == ChargeLine.application_pk)
            .outerjoin(RefundRequest, RefundRequest.id == RefundLine.refund_request_pk)
            .where(scope.condition())
            .order_by(RefundLine.id)
        )
        if refunded_from:
            stmt = stmt.where(RefundLine.refunded_at >= refunded_from)
        if refunded_to:
            stmt = stmt.where(RefundLine.refunded_at < refunded_to)
        return [(row, no) for row, no in self.session.execute(stmt)]

    def refunds_of_request(self, refund_request_pk: int) -> list[RefundLine]:
        return list(
            self.session.scalars(
                select(RefundLine)
                .where(RefundLine.refund_request_pk == refund_request_pk)
                .order_by(RefundLine.id)
            )
        )

    def claim_charge_request(self, values: dict) -> int | None:
        return insert_returning_id(self.session, ChargeRequest, values, ["charge_request_no"])

    def charge_request(self, charge_request_no: str) -> ChargeRequest | None:
        return self.session.scalars(
            select(ChargeRequest).where(ChargeRequest.charge_request_no == charge_request_no)
        ).one_or_none()

    def claim_refund_request(self, values: dict) -> int | None:
        return insert_returning_id(self.session, RefundRequest, values, ["refund_request_no"])

    def refund_request(self, refund_request_no: str) -> RefundRequest | None:
        return self.session.scalars(
            select(RefundRequest).where(RefundRequest.refund_request_no == refund_request_no)
        ).one_or_none()


@dataclass(frozen=True)
class LedgerScope:
    """Whose ledger: an application, or a patient (and visit). PACS sees released
    applications only, and of its departments if it is bound to some."""

    application_no: str | None = None
    patient_id: str | None = None
    visit_no: str | None = None
    released_only: bool = False
    departments: Sequence[str] | None = None

    def condition(self):
        condition = _scope_keys(self.application_no, self.patient_id, self.visit_no)
        if self.released_only:
            condition = and_(condition, Application.released_at.is_not(None))
        if self.departments is not None:
            condition = and_(condition, Application.executing_department_code.in_(list(self.departments)))
        return condition


def _scope_keys(application_no: str | None, patient_id: str | None, visit_no: str | None):
    if application_no:
        return Application.application_no == application_no
    condition = Application.patient_id == patient_id
    if visit_no:
        condition = and_(
            condition, Application.visit_pk.in_(select(Visit.id).where(Visit.visit_no == visit_no))
        )
    return condition


_STORE_RESPONSE = (
    update(ProcessedMessage.__table__)
    .where(ProcessedMessage.__table__.c.id == bindparam("pk"))
    .values(response=bindparam("response", type_=JSONB))
)
_CALL_COLUMNS = ("at", "service", "caller", "operation", "message_id", "application_no", "patient_id",
                 "outcome", "fault_code", "duration_ms", "replayed", "remote_addr", "request_body",
                 "response_body")
_RECORD_CALL = (f"INSERT INTO call_records ({', '.join(_CALL_COLUMNS)}) "
                f"VALUES ({', '.join(['%s'] * len(_CALL_COLUMNS))})")


def call_record_statement(values: dict) -> tuple[str, list]:
    """The call record's INSERT, to go with a held transaction's COMMIT."""
    return _RECORD_CALL, [values[column] for column in _CALL_COLUMNS]


def same_record(values: dict):
    """The condition that finds this very call record (a COMMIT whose acknowledgement was
    lost, a spool replay cut short after its commit)."""
    return and_(CallRecord.at == values["at"], CallRecord.service == values["service"],
                CallRecord.duration_ms == values["duration_ms"],
                CallRecord.message_id.is_not_distinct_from(values.get("message_id")))


@contextmanager
def _autocommitted(engine: Engine) -> Iterator[Raw]:
    """A pooled connection for one statement that is its own transaction."""
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        dbapi.autocommit = True
        try:
            yield Raw(conn)
        finally:
            if not dbapi.closed:
                dbapi.autocommit = False


def call_recorded(engine: Engine, values: dict) -> bool:
    """Whether this record is stored (a COMMIT whose acknowledgement was lost)."""
    with engine.connect() as conn:
        return bool(conn.scalar(select(exists().where(same_record(values)))))


def record_call(engine: Engine, values: dict) -> None:
    """Store one call record in a transaction of its own: it must outlive a rolled-back
    call. One autocommitted INSERT, whose commit waits for the disk: the answer is sent
    after it, and an answered call is a recorded one even across a crash of PostgreSQL."""
    if values.get("replaces"):
        with engine.begin() as conn:
            replace_call_record(conn, values)
        return
    with _autocommitted(engine) as sql:
        sql.run(_RECORD_CALL, [values[column] for column in _CALL_COLUMNS])


def replace_call_record(conn, values: dict) -> None:
    """Store the record of a call whose COMMIT may have gone through with its own record
    (the acknowledgement was lost, and the database could not be asked). Both carry the
    same ``at``: the committed record, if there is one, is overwritten with the answer the
    caller really got; otherwise this one is inserted. Storing it twice stores it once.
    (A restart or crash settles the COMMIT before anyone can connect again; a connection
    that broke while its server went on running the COMMIT could still let this come
    first, and the call would keep two records.)"""
    row = {column: values[column] for column in _CALL_COLUMNS}
    same_call = and_(CallRecord.at == row["at"], CallRecord.service == row["service"],
                     CallRecord.direction == "in", CallRecord.caller.is_not_distinct_from(row["caller"]),
                     CallRecord.operation.is_not_distinct_from(row["operation"]),
                     CallRecord.message_id.is_not_distinct_from(row["message_id"]))
    # a body the spool dropped (it was full) keeps the committed record's
    changes = {k: v for k, v in row.items() if v is not None or k not in ("request_body", "response_body")}
    replaced = conn.execute(update(CallRecord).where(same_call).values(**changes)).rowcount
    if replaced == 0:
        conn.execute(insert(CallRecord).values(**row))
    elif replaced > 1:
        log.error("%d call records had the same time, caller and MessageId; all now hold one answer", replaced)


_CLAIM = ("INSERT INTO processed_messages (caller, message_id, operation, request_hash) "
          "VALUES (%s, %s, %s, %s) ON CONFLICT (caller, message_id) DO NOTHING RETURNING id")
_STORE_RESPONSE = "UPDATE processed_messages SET response = %s WHERE id = %s"


class MessageRepository:
    def __init__(self, session: Session):
        self.session = session

    def claim(self, caller: str, message_id: str, operation: str, request_hash: str) -> int | None:
        """Reserve a MessageId for this transaction; None if it was used already. (A retry
        racing the original waits here on the unique key until the original ends.)"""
        row = raw(self.session).one(_CLAIM, (caller, message_id, operation, request_hash))
        return row[0] if row else None

    def get(self, caller: str, message_id: str) -> ProcessedMessage | None:
        return self.session.scalars(
            select(ProcessedMessage).where(
                ProcessedMessage.caller == caller, ProcessedMessage.message_id == message_id
            )
        ).one_or_none()

    def store_response(self, pk: int, response: dict) -> None:
        """Keep the answer for replays: sent with the COMMIT, whoever commits."""
        raw(self.session).defer(_STORE_RESPONSE, (jsonb(response), pk))

    def record_fault(self, caller: str, message_id: str, operation: str, request_hash: str,
                     code: str, message: str) -> None:
        insert_returning_id(
            self.session,
            ProcessedMessage,
            {"caller": caller, "message_id": message_id, "operation": operation,
             "request_hash": request_hash, "fault_code": code, "fault_message": message},
            ["caller", "message_id"],
        )

