"""EMR access: HIS publishes documents and orders; the radiologist reads them while
reporting, and every read is recorded as an access to that patient's record."""

from __future__ import annotations

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.domain.access import Caller
from his_pacs_ws.domain.emr import EmrScope
from his_pacs_ws.domain.errors import (
    AccessDenied,
    ApplicationNotFound,
    PatientMismatch,
    PatientNotFound,
    SchemaValidationError,
)
from his_pacs_ws.services.common import now
from his_pacs_ws.services.messages import run_once

DEFAULT_MAX_DOCUMENTS = 200
MAX_DOCUMENTS = 1000
VISIT_FIELDS = ("patient_type", "visit_at", "inpatient_no", "ward_code", "ward_name", "bed_no",
                "department_code", "department_name", "diagnosis")


def publish_emr(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """Store a visit's documents (a newer Version replaces a document) and orders."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        documents, orders = req.get("documents") or [], req.get("orders") or []
        if not documents and not orders:
            raise SchemaValidationError("PublishEmr needs at least one document or order")
        patient_pk = uow.emr.ensure_patient(req["patient_id"])
        visit_pk = _visit(uow, patient_pk, req["visit"])
        stored = ignored = 0
        for doc in documents:
            if _document(uow, patient_pk, visit_pk, doc):
                stored += 1
            else:
                ignored += 1
        for order in orders:
            _order(uow, patient_pk, visit_pk, order)
        return {"patient_id": req["patient_id"], "visit_no": req["visit"]["visit_no"],
                "documents_stored": stored, "documents_ignored": ignored, "orders_stored": len(orders)}

    return run_once(uow, caller, "PublishEmr", request, rule)


def _visit(uow: UnitOfWork, patient_pk: int, visit: dict) -> int:
    values = {"visit_no": visit["visit_no"], "patient_pk": patient_pk}
    values.update({k: visit.get(k) for k in VISIT_FIELDS})
    visit_pk, owner = uow.applications.upsert_visit(values)
    if owner != patient_pk:
        raise PatientMismatch(f"visit {visit['visit_no']} belongs to another patient")
    return visit_pk


def _document(uow: UnitOfWork, patient_pk: int, visit_pk: int, doc: dict) -> bool:
    """Store or replace one document; False when the stored version is as new or newer.

    A new DocumentId is inserted with ON CONFLICT DO NOTHING, so two publishes racing with
    it wait for each other on the key instead of one failing."""
    version = doc.get("version") or 1
    values = {
        "patient_pk": patient_pk, "visit_pk": visit_pk, "version": version,
        "document_type": doc["document_type"], "title": doc["title"], "content": doc["content"],
        "author_name": doc.get("author_name"), "recorded_at": doc["recorded_at"], "updated_at": now(),
    }
    if uow.emr.insert_document({"document_id": doc["document_id"], **values}) is not None:
        return True
    existing = uow.emr.document(doc["document_id"], for_update=True)
    assert existing is not None  # the row that won the insert
    if existing.patient_pk != patient_pk:
        raise PatientMismatch(f"document {doc['document_id']} belongs to another patient")
    if existing.version >= version:
        return False
    for key, value in values.items():
        setattr(existing, key, value)
    uow.emr.flush()
    return True


def _order(uow: UnitOfWork, patient_pk: int, visit_pk: int, order: dict) -> None:
    """Store or replace one order: the latest publish wins."""
    values = {
        "patient_pk": patient_pk, "visit_pk": visit_pk, "order_type": order.get("order_type"),
        "content": order["content"], "ordered_at": order["ordered_at"], "status": order.get("status"),
        "updated_at": now(),
    }
    if uow.emr.insert_order({"order_no": order["order_no"], **values}) is not None:
        return
    existing = uow.emr.order(order["order_no"], for_update=True)
    assert existing is not None  # the row that won the insert
    if existing.patient_pk != patient_pk:
        raise PatientMismatch(f"order {order['order_no']} belongs to another patient")
    for key, value in values.items():
        setattr(existing, key, value)
    uow.emr.flush()


def query_emr(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """The patient's records: this visit's (anchored by VisitNo or ApplicationNo, else the
    newest) or all visits', newest visit first, documents oldest first."""
    scope = EmrScope(request.get("scope") or EmrScope.CURRENT_VISIT.value)
    limit = min(request.get("max_documents") or DEFAULT_MAX_DOCUMENTS, MAX_DOCUMENTS)
    with uow:
        patient = uow.emr.patient(request["patient_id"])
        if patient is None:
            raise PatientNotFound("no records of this patient have been published")
        departments = caller.department_list
        if departments is not None and not uow.applications.patient_has_application_in(patient.id, departments):
            raise AccessDenied("this system serves no department that examines this patient")
        visits = uow.emr.visits_of(patient.id)
        if scope is EmrScope.CURRENT_VISIT:
            anchor = _anchor(uow, caller, patient, visits, request)
            visits = [v for v in visits if v.id == anchor] if anchor else visits[:1]
        pks = [v.id for v in visits]
        documents = uow.emr.documents(pks, types=request.get("document_types"),
                                      recorded_from=request.get("from"), recorded_to=request.get("to"),
                                      limit=limit + 1) if pks else []
        truncated = len(documents) > limit
        documents = sorted(documents[:limit], key=lambda d: (d.recorded_at, d.id))
        orders = (uow.emr.orders(pks, ordered_from=request.get("from"), ordered_to=request.get("to"))
                  if pks and request.get("include_orders", False) else [])
        requested_by = request.get("requested_by") or {}
        uow.emr.record_access(
            caller=caller.name, requested_by_code=requested_by.get("code"),
            requested_by_name=requested_by.get("name"), patient_id=request["patient_id"], scope=scope.value,
            visit_no=request.get("visit_no"), application_no=request.get("application_no"),
            documents_returned=len(documents), orders_returned=len(orders),
        )
        uow.commit()
        return {
            "patient_id": request["patient_id"],
            "visits": [_visit_record(v, documents, orders) for v in visits],
            "truncated": truncated,
        }


def _anchor(uow: UnitOfWork, caller: Caller, patient, visits, request: dict) -> int | None:
    if request.get("visit_no"):
        match = [v.id for v in visits if v.visit_no == request["visit_no"]]
        if not match:
            raise PatientMismatch(f"visit {request['visit_no']} is not a visit of this patient")
        return match[0]
    if request.get("application_no"):
        app = uow.applications.get(request["application_no"])
        if app is None or app.patient_pk != patient.id or app.released_at is None:
            raise ApplicationNotFound(f"application {request['application_no']} is not this patient's")
        caller.check_department(app.executing_department_code, app.application_no)
        return app.visit_pk
    return None


def _visit_record(visit, documents, orders) -> dict:
    return {
        "visit_no": visit.visit_no,
        "patient_type": visit.patient_type,
        "visit_at": visit.visit_at,
        "department_name": visit.department_name,
        "diagnosis": visit.diagnosis,
        "documents": [
            {"document_id": d.document_id, "document_type": d.document_type, "title": d.title,
             "content": d.content, "author_name": d.author_name, "recorded_at": d.recorded_at,
             "version": d.version}
            for d in documents if d.visit_pk == visit.id
        ],
        "orders": [
            {"order_no": o.order_no, "order_type": o.order_type, "content": o.content,
             "ordered_at": o.ordered_at, "status": o.status}
            for o in orders if o.visit_pk == visit.id
        ],
    }
