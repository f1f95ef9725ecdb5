"""HIS use cases: submit, pay, send, cancel and read exam applications."""

from __future__ import annotations

from decimal import Decimal

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.domain import billing
from his_pacs_ws.domain.access import Caller
from his_pacs_ws.domain.billing import RefundSource, Trigger
from his_pacs_ws.domain.errors import (
    AmountMismatch,
    ApplicationExists,
    ApplicationNotFound,
    NotInpatient,
    NotOutpatient,
    PatientMismatch,
)
from his_pacs_ws.domain.status import (
    PatientType,
    Status,
    check_his_cancel,
    check_release,
)
from his_pacs_ws.domain.timeline import Event, Source
from his_pacs_ws.services import ledger, outbox
from his_pacs_ws.services.common import (
    application_detail,
    application_state,
    charge_line,
    fingerprint,
    jsonable,
    load_for_update,
    record_event,
    status_event,
    to_item,
    without,
)
from his_pacs_ws.services.messages import run_once
from his_pacs_ws.services.reports import report_record


def submit_application(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """Store a new application (NEW, invisible to PACS until paid or sent)."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        items = [to_item(i) for i in req.get("items") or []]
        billing.check_items(items)
        content = fingerprint(without(req, "message_id"))
        submitted = uow.applications.submit(_columns(req, content, billing.total(items)), req["patient"],
                                            req["visit"], req["items"])
        if not submitted.existed and not submitted.visit_ok:
            raise PatientMismatch(f"visit {req['visit']['visit_no']} belongs to another patient")
        if submitted.application is not None:
            return {"application": application_state(submitted.application)}
        # The ApplicationNo was there already, or a racing request inserted it a moment
        # ago: the same content is the same application, anything else a conflict.
        existing = uow.applications.get(req["application_no"])
        assert existing is not None
        if existing.request_hash != content:
            raise ApplicationExists(
                f"application {req['application_no']} exists with different content"
            )
        return {"application": application_state(existing)}

    return run_once(uow, caller, "SubmitApplication", request, rule)


def _columns(req: dict, content: str, total: Decimal) -> dict:
    """The application row of a submission."""
    patient, visit, doctor = req["patient"], req["visit"], req["ordering_doctor"]
    return {
        "application_no": req["application_no"],
        "request_hash": content,
        "status": Status.NEW.value,
        "patient_id": patient["patient_id"],
        "patient_name": patient["name"],
        "patient_type": visit["patient_type"],
        "patient_snapshot": jsonable(patient),
        "visit_snapshot": jsonable(visit),
        "ordering_doctor_code": doctor["code"],
        "ordering_doctor_name": doctor["name"],
        "ordering_department_code": req["ordering_department_code"],
        "ordering_department_name": req.get("ordering_department_name"),
        "executing_department_code": req["executing_department_code"],
        "executing_department_name": req.get("executing_department_name"),
        "ordered_at": req["ordered_at"],
        "clinical_diagnosis": req.get("clinical_diagnosis"),
        "clinical_history": req.get("clinical_history"),
        "exam_purpose": req.get("exam_purpose"),
        "priority": req.get("priority"),
        "total_amount": total,
    }


def confirm_payment(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """The cashier took the money: the application reaches the PACS worklist."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        app = load_for_update(uow, req["application_no"])
        if not PatientType(app.patient_type).pays_at_cashier:
            raise NotOutpatient(
                f"application {app.application_no} is an inpatient's: charged to the inpatient "
                "account, not paid at the cashier"
            )
        check_release(Status(app.status), "ConfirmPayment")
        if Decimal(req["amount"]) != app.total_amount:
            raise AmountMismatch(
                f"paid {req['amount']} but application {app.application_no} totals {app.total_amount}"
            )
        app.paid_amount, app.paid_at, app.invoice_no = req["amount"], req["paid_at"], req.get("invoice_no")
        app.released_at = req["paid_at"]
        ledger.post_items(uow, app, Trigger.PAYMENT, req["paid_at"], origin=caller.name)
        record_event(uow, app, event=Event.PAID, status=Status.RELEASED, occurred_at=req["paid_at"],
                operator=None, source=Source.HIS, origin=caller.name,
                note=req.get("invoice_no") and f"invoice {req['invoice_no']}")
        outbox.released(uow, app, origin=caller.name)
        return {"application": application_state(app)}

    return run_once(uow, caller, "ConfirmPayment", request, rule)


def send_inpatient_order(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """The ward nurse sent (decomposed) the order: released, and charged if the charge
    point of the executing department is NURSE_SEND."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        app = load_for_update(uow, req["application_no"])
        if PatientType(app.patient_type) is not PatientType.INPATIENT:
            raise NotInpatient(
                f"application {app.application_no} is not an inpatient's: it is released by payment"
            )
        check_release(Status(app.status), "SendInpatientOrder")
        point = settings.charge_point_for(app.executing_department_code)
        app.charge_point, app.released_at = point.value, req["sent_at"]
        posted = []
        if point is billing.ChargePoint.NURSE_SEND:
            posted = ledger.post_items(uow, app, Trigger.NURSE_SEND, req["sent_at"], operator=req["nurse"],
                                       origin=caller.name)
        record_event(uow, app, event=Event.ORDER_SENT, status=Status.RELEASED, occurred_at=req["sent_at"],
                operator=req["nurse"], source=Source.HIS, origin=caller.name)
        outbox.released(uow, app, origin=caller.name)
        return {"application": application_state(app), "charges": [charge_line(c) for c in posted]}

    return run_once(uow, caller, "SendInpatientOrder", request, rule)


def cancel_application(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """HIS cancels before registration; charges are reversed and a paid fee is due back."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        app = load_for_update(uow, req["application_no"])
        already = check_his_cancel(Status(app.status))
        reversed_lines = []
        if not already:
            reversed_lines = ledger.reverse_all(
                uow, app, RefundSource.HIS_CANCEL, req["cancelled_at"], reason=req["reason"],
                operator=req["operator"], origin=caller.name,
            )
            record_event(uow, app, event=Event.CANCELLED, status=Status.CANCELLED,
                    occurred_at=req["cancelled_at"], operator=req["operator"], source=Source.HIS,
                    origin=caller.name, note=req["reason"])
            outbox.cancelled(uow, app, reason=req["reason"], operator=req["operator"],
                             occurred_at=req["cancelled_at"], origin=caller.name)
        return {
            "application": application_state(app),
            "refund_due": app.paid_amount is not None,
            "reversed_charges": [charge_line(c) for c in reversed_lines],
        }

    return run_once(uow, caller, "CancelApplication", request, rule)


def get_application(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    with uow.reading():
        app = uow.applications.get(request["application_no"])
        if app is None:
            raise ApplicationNotFound(f"application {request['application_no']} does not exist")
        return {
            "application": application_detail(app, uow.applications.items([app.id])[app.id]),
            "timeline": [status_event(e) for e in uow.applications.timeline(app.id)],
            "charges": [charge_line(c) for c in uow.ledger.lines(app.id)],
            "reports": [report_record(r, app.application_no)
                        for r, _ in uow.reports.latest(application_pks=[app.id])],
        }
