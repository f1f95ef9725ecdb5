"""The critical-value (危急值) closed loop: PACS raises, HIS receives with read-back and
records the handling, PACS sees every step; each step names who and when."""

from __future__ import annotations

from datetime import datetime, timezone

from his_pacs_ws.config import Settings
from his_pacs_ws.db.clinical import CriticalValueFilter
from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.db.models import CriticalValue
from his_pacs_ws.domain import critical
from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.domain.critical import CriticalStatus
from his_pacs_ws.domain.errors import CriticalValueExists, CriticalValueNotFound
from his_pacs_ws.domain.notifications import Notification
from his_pacs_ws.services import outbox
from his_pacs_ws.services.common import fingerprint, load_for_pacs, now, staff, without
from his_pacs_ws.services.messages import run_once


QUERY_LIMIT = 1000


def critical_value_record(cv: CriticalValue, application_no: str, at: datetime | None = None) -> dict:
    at = at or datetime.now(timezone.utc)
    return {
        "critical_value_no": cv.critical_value_no,
        "application_no": application_no,
        "patient_id": cv.patient_id,
        "patient_name": cv.patient_name,
        "department_code": cv.department_code,
        "report_no": cv.report_no,
        "finding": cv.finding,
        "status": cv.status,
        "reported_by": staff(cv.reported_by_code, cv.reported_by_name),
        "reviewed_by": staff(cv.reviewed_by_code, cv.reviewed_by_name),
        "contact_phone": cv.contact_phone,
        "reported_at": cv.reported_at,
        "ack_deadline": cv.ack_deadline,
        "received_by": staff(cv.received_by_code, cv.received_by_name),
        "received_at": cv.received_at,
        "read_back_confirmed": cv.read_back_confirmed,
        "handled_by": staff(cv.handled_by_code, cv.handled_by_name),
        "handled_at": cv.handled_at,
        "handling_opinion": cv.handling_opinion,
        "revoked_by": staff(cv.revoked_by_code, cv.revoked_by_name),
        "revoked_at": cv.revoked_at,
        "revoke_reason": cv.revoke_reason,
        "overdue": critical.is_overdue(cv.ack_deadline, cv.received_at, cv.revoked_at, at),
        "minutes_to_receive": critical.minutes_between(cv.reported_at, cv.received_at),
        "minutes_to_handle": critical.minutes_between(cv.reported_at, cv.handled_at),
    }


def raise_critical_value(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """PACS raises a value after its double check; the receipt clock starts at ReportedAt."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        app = load_for_pacs(uow, req["application_no"], caller)
        content = fingerprint(without(req, "message_id"))
        reported_by, reviewed_by = req["reported_by"], req.get("reviewed_by") or {}
        visit = app.visit_snapshot or {}
        pk = uow.critical_values.claim({
            "critical_value_no": req["critical_value_no"], "request_hash": content,
            "application_pk": app.id, "patient_id": app.patient_id, "patient_name": app.patient_name,
            # the patient's department: the ward or clinic that must act on it
            "department_code": visit.get("ward_code") or visit.get("department_code")
            or app.ordering_department_code,
            "report_no": req.get("report_no"), "finding": req["finding"],
            "status": CriticalStatus.RAISED.value, "contact_phone": req.get("contact_phone"),
            "reported_by_code": reported_by["code"], "reported_by_name": reported_by["name"],
            "reviewed_by_code": reviewed_by.get("code"), "reviewed_by_name": reviewed_by.get("name"),
            "reported_at": req["reported_at"],
            "ack_deadline": critical.ack_deadline(req["reported_at"], settings.critical_ack_minutes),
            "read_back_confirmed": False,
        })
        if pk is None:
            existing = uow.critical_values.get(req["critical_value_no"])
            assert existing is not None  # the row that won the insert
            if existing.request_hash != content:
                raise CriticalValueExists(
                    f"critical value {req['critical_value_no']} exists with different content")
            return {"critical_value": critical_value_record(existing, app.application_no)}
        stored = uow.critical_values.get_by_pk(pk)
        assert stored is not None  # inserted just now
        record = critical_value_record(stored, app.application_no)
        outbox.critical_value(uow, Notification.CRITICAL_VALUE_RAISED, app, record,
                              occurred_at=req["reported_at"], origin=caller.name)
        return {"critical_value": record}

    return run_once(uow, caller, "RaiseCriticalValue", request, rule)


def _load(uow: UnitOfWork, number: str) -> CriticalValue:
    """The value, row-locked after its application: every path locks the application
    first (raising one does too), so two of them never wait for each other in a circle."""
    cv = uow.critical_values.get(number)
    if cv is None:
        raise CriticalValueNotFound(f"critical value {number} does not exist")
    uow.outbox.lock_application(cv.application_pk)
    return uow.critical_values.lock(cv.id)


def _changed(uow: UnitOfWork, cv: CriticalValue, kind: Notification, at: datetime, origin: str | None) -> dict:
    """The value's record after a step, told to the other side: under the application's
    row lock, like every change, so that the notifications keep their order."""
    uow.outbox.lock_application(cv.application_pk)
    app = uow.applications.get_by_pk(cv.application_pk)
    record = critical_value_record(cv, app.application_no)
    outbox.critical_value(uow, kind, app, record, occurred_at=at, origin=origin)
    return record


def acknowledge(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """The HIS receiver read the value back: RAISED -> RECEIVED."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        cv = _load(uow, req["critical_value_no"])
        critical.check_acknowledge(CriticalStatus(cv.status), req["read_back_confirmed"], cv.critical_value_no)
        cv.status = CriticalStatus.RECEIVED.value
        cv.received_by_code, cv.received_by_name = req["received_by"]["code"], req["received_by"]["name"]
        cv.received_at, cv.read_back_confirmed = req["received_at"], True
        return {"critical_value": _changed(uow, cv, Notification.CRITICAL_VALUE_UPDATED, req["received_at"],
                                           caller.name)}

    return run_once(uow, caller, "AcknowledgeCriticalValue", request, rule)


def record_handling(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """The clinician recorded what was done: RECEIVED -> HANDLED, the loop is closed."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        cv = _load(uow, req["critical_value_no"])
        critical.check_handle(CriticalStatus(cv.status), cv.critical_value_no)
        cv.status = CriticalStatus.HANDLED.value
        cv.handled_by_code, cv.handled_by_name = req["handled_by"]["code"], req["handled_by"]["name"]
        cv.handled_at, cv.handling_opinion = req["handled_at"], req["handling_opinion"]
        return {"critical_value": _changed(uow, cv, Notification.CRITICAL_VALUE_UPDATED, req["handled_at"],
                                           caller.name)}

    return run_once(uow, caller, "RecordCriticalValueHandling", request, rule)


def revoke(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """PACS withdraws a value raised in error, before it is handled."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        cv = _load(uow, req["critical_value_no"])
        app = uow.applications.get_by_pk(cv.application_pk)
        caller.check_department(app.executing_department_code, app.application_no)
        if critical.check_revoke(CriticalStatus(cv.status), cv.critical_value_no):  # revoked already
            return {"critical_value": critical_value_record(cv, app.application_no)}
        cv.status = CriticalStatus.REVOKED.value
        cv.revoked_by_code, cv.revoked_by_name = req["operator"]["code"], req["operator"]["name"]
        cv.revoked_at, cv.revoke_reason = now(), req["reason"]
        return {"critical_value": _changed(uow, cv, Notification.CRITICAL_VALUE_REVOKED, cv.revoked_at,
                                           caller.name)}

    return run_once(uow, caller, "RevokeCriticalValue", request, rule)


def notify_overdue(uow: UnitOfWork, settings: Settings, *, limit: int = 100) -> int:
    """Escalate the values whose deadline passed unreceived: one CriticalValueOverdue each,
    whichever deliverer (on whichever node) gets there first."""
    with uow:
        if not uow.outbox.try_overdue_lock():
            return 0
        at, escalated = now(), 0
        for pk, application_pk in uow.critical_values.overdue(at, limit):
            uow.outbox.lock_application(application_pk)  # the application first, as every path does
            cv = uow.critical_values.lock(pk)
            if cv.status != CriticalStatus.RAISED.value or cv.overdue_notified_at is not None:
                continue  # received (or escalated) meanwhile
            cv.overdue_notified_at = at
            _changed(uow, cv, Notification.CRITICAL_VALUE_OVERDUE, cv.ack_deadline, origin=None)
            escalated += 1
        uow.commit()
        return escalated


def query_critical_values(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    at = now()
    flt = CriticalValueFilter(
        statuses=request.get("statuses"),
        department_code=request.get("department_code"),
        patient_id=request.get("patient_id"),
        application_no=request.get("application_no"),
        reported_from=request.get("from"),
        reported_to=request.get("to"),
        overdue_at=at if request.get("overdue_only") else None,
        departments=caller.department_list,
        limit=None if caller.role is Role.ADMIN else QUERY_LIMIT,  # the audit sees every loop
    )
    with uow.reading():
        return {"critical_values": [critical_value_record(cv, no, at)
                                    for cv, no in uow.critical_values.search(flt)]}
