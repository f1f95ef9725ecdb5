"""Reports and images: PACS pushes versions, HIS reads the latest of each."""

from __future__ import annotations

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.db.clinical import ReportRow
from his_pacs_ws.domain.access import Caller
from his_pacs_ws.domain.errors import (
    ApplicationNotFound,
    InvalidTransition,
    SchemaValidationError,
)
from his_pacs_ws.domain.reports import (
    ISSUED,
    ResultStatus,
    apply_report,
    check_verification,
)
from his_pacs_ws.domain.status import Status
from his_pacs_ws.domain.timeline import Event, Source
from his_pacs_ws.services import ledger, outbox
from his_pacs_ws.services.common import (
    application_state,
    fingerprint,
    load_for_pacs,
    record_event,
    staff,
)
from his_pacs_ws.services.messages import run_once

CONTENT_FIELDS = (
    "result_status", "accession_no", "findings", "impression", "positive", "reporting_doctor",
    "reported_at", "verifying_doctor", "verified_at", "study_instance_uid", "viewer_url",
    "image_urls", "pdf_url",
)


def report_record(report: ReportRow, application_no: str) -> dict:
    return {
        "application_no": application_no,
        "accession_no": report.accession_no,
        "report_no": report.report_no,
        "version": report.version,
        "result_status": report.result_status,
        "findings": report.findings,
        "impression": report.impression,
        "positive": report.positive,
        "reporting_doctor": staff(report.reporting_doctor_code, report.reporting_doctor_name),
        "reported_at": report.reported_at,
        "verifying_doctor": staff(report.verifying_doctor_code, report.verifying_doctor_name),
        "verified_at": report.verified_at,
        "study_instance_uid": report.study_instance_uid,
        "viewer_url": report.viewer_url,
        "image_urls": report.image_urls or None,
        "pdf_url": report.pdf_url,
    }


def push_report(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """PACS pushes a report: a new version unless this content is stored already."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        result = ResultStatus(req["result_status"])
        check_verification(result, req.get("verifying_doctor"), req.get("verified_at"), req.get("positive"))
        app = load_for_pacs(uow, req["application_no"], caller)
        uow.reports.lock(req["report_no"])  # pushes of one ReportNo, even for two applications, take turns
        versions = uow.reports.versions(req["report_no"])
        if versions and versions[0].application_pk != app.id:
            raise InvalidTransition(f"report {req['report_no']} belongs to another application")
        content = fingerprint({k: req.get(k) for k in CONTENT_FIELDS})
        # The latest version pushed again (a retry under a new MessageId) is answered with its
        # number; anything else is a new push, even if it repeats an older version.
        if versions and versions[-1].content_hash == content:
            return {"application": application_state(app), "report_version": versions[-1].version,
                    "applied": False}
        latest = ResultStatus(versions[-1].result_status) if versions else None
        previous = Status(app.status)
        outcome = apply_report(previous, result, latest)
        version = versions[-1].version if versions else 0
        stored = None
        if outcome.stores:
            version += 1
            stored = _store(uow, app.id, req, version, content)
        if outcome.moves:
            if req.get("accession_no") and not app.accession_no:
                app.accession_no = req["accession_no"]
            ledger.charge_point_effects(uow, app, previous, outcome.status, Event.of_report(result),
                                        req["reported_at"], req["reporting_doctor"], origin=caller.name)
        occurred_at = req.get("verified_at") or req["reported_at"]
        record_event(uow, app, event=Event.of_report(result), status=outcome.status,
                     occurred_at=occurred_at,
                     operator=req.get("verifying_doctor") or req["reporting_doctor"], source=Source.PACS,
                     origin=caller.name, applied=outcome.stores, note=f"report {req['report_no']} v{version}")
        if stored is not None:
            outbox.report_published(uow, app, report_record(stored, app.application_no),
                                    occurred_at=occurred_at, origin=caller.name)
        return {"application": application_state(app), "report_version": version,
                "applied": outcome.stores}

    return run_once(uow, caller, "PushReport", request, rule)


def _store(uow: UnitOfWork, application_pk: int, req: dict, version: int, content: str) -> ReportRow:
    reporting = req["reporting_doctor"]
    verifying = req.get("verifying_doctor") or {}
    return uow.reports.add(
        application_pk=application_pk, report_no=req["report_no"], version=version,
        result_status=req["result_status"], content_hash=content,
        accession_no=req.get("accession_no"), findings=req.get("findings"),
        impression=req.get("impression"), positive=req.get("positive"),
        reporting_doctor_code=reporting["code"], reporting_doctor_name=reporting["name"],
        reported_at=req["reported_at"], verifying_doctor_code=verifying.get("code"),
        verifying_doctor_name=verifying.get("name"), verified_at=req.get("verified_at"),
        study_instance_uid=req.get("study_instance_uid"), viewer_url=req.get("viewer_url"),
        image_urls=req.get("image_urls"), pdf_url=req.get("pdf_url"),
    )


def query_reports(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """HIS reads reports: of an application (with the patient's earlier ones unless
    IncludePrior is false) or of a patient; issued ones, preliminary on request; newest first."""
    application_no, patient_id = request.get("application_no"), request.get("patient_id")
    if not application_no and not patient_id:
        raise SchemaValidationError("QueryReports needs ApplicationNo or PatientId")
    statuses = [s.value for s in ISSUED]
    if request.get("include_preliminary", False):
        statuses.append(ResultStatus.PRELIMINARY.value)
    with uow.reading():
        scope: dict = {"patient_id": patient_id}
        if application_no:
            app = uow.applications.get(application_no)
            if app is None or (patient_id and app.patient_id != patient_id):
                raise ApplicationNotFound(f"application {application_no} does not exist")
            if request.get("include_prior", True):
                scope = {"patient_id": app.patient_id}
            else:
                scope = {"application_pks": [app.id]}
        rows = uow.reports.latest(**scope, statuses=statuses, reported_from=request.get("from"),
                                  reported_to=request.get("to"))
        return {"reports": [report_record(report, no) for report, no in rows]}
