"""PACS use cases: the worklist query and status events (schedule, register, examine)."""

from __future__ import annotations

import base64
import binascii

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.db.repositories import ApplicationFilter
from his_pacs_ws.domain.access import Caller
from his_pacs_ws.domain.errors import SchemaValidationError
from his_pacs_ws.domain.status import (
    UNDO,
    PacsEvent,
    Status,
    apply_pacs_event,
    superseding_statuses,
)
from his_pacs_ws.domain.timeline import Event, Source
from his_pacs_ws.services import ledger
from his_pacs_ws.services.common import (
    application_detail,
    application_state,
    charge_line,
    load_for_pacs,
    record_event,
)
from his_pacs_ws.services.messages import run_once

DEFAULT_STATUSES = (Status.RELEASED.value, Status.SCHEDULED.value)
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


def report_status(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """PACS reports a step. Stale events are recorded and answered, not applied."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        app = load_for_pacs(uow, req["application_no"], caller)
        event = PacsEvent(req["status"])
        if event is PacsEvent.REGISTERED and not req.get("accession_no"):
            raise SchemaValidationError("AccessionNo is required with REGISTERED")
        undos, statuses = superseding_statuses(event)
        later = uow.applications.latest_event_at(app.id, undo_events=undos, forward_statuses=statuses)
        previous = Status(app.status)
        outcome = apply_pacs_event(previous, event, superseded=later is not None and later > req["occurred_at"])
        charges = []
        if outcome.applied:
            if event not in UNDO and req.get("accession_no"):
                app.accession_no = req["accession_no"]
            charges = ledger.charge_point_effects(uow, app, previous, outcome.status, Event.of_pacs(event),
                                                   req["occurred_at"], req["operator"], note=req.get("note"),
                                                   origin=caller.name)
        record_event(uow, app, event=Event.of_pacs(event), status=outcome.status,
                     occurred_at=req["occurred_at"], operator=req["operator"], source=Source.PACS,
                     origin=caller.name, applied=outcome.applied, note=req.get("note"), room=req.get("room"))
        return {
            "application": application_state(app),
            "applied": outcome.applied,
            "charges": [charge_line(c) for c in charges],
        }

    return run_once(uow, caller, "ReportStatus", request, rule)




def encode_page_token(after_pk: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{after_pk}".encode()).decode().rstrip("=")


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        version, _, value = raw.partition(":")
        after = int(value) if value.isascii() and value.isdigit() else -1
        if version != "v1" or not 0 <= after < 2**63:
            raise ValueError(version)
        return after
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SchemaValidationError("PageToken is not one this service issued") from None


def query_applications(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """The PACS worklist. NEW applications never appear: they are not paid or sent yet."""
    statuses = [s for s in (request.get("statuses") or DEFAULT_STATUSES) if s != Status.NEW.value]
    page_size = min(request.get("page_size") or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    flt = ApplicationFilter(
        statuses=statuses,
        executing_department_code=request.get("executing_department_code"),
        modality=request.get("modality"),
        patient_id=request.get("patient_id"),
        patient_name=request.get("patient_name"),
        application_no=request.get("application_no"),
        accession_no=request.get("accession_no"),
        ordered_from=request.get("from"),
        ordered_to=request.get("to"),
        departments=caller.department_list,
    )
    with uow.reading():
        rows = uow.applications.search(
            flt, after_pk=decode_page_token(request.get("page_token")), limit=page_size + 1
        )
        page = rows[:page_size]
        items = uow.applications.items([app.id for app in page])
        return {
            "applications": [application_detail(app, items[app.id]) for app in page],
            "next_page_token": encode_page_token(page[-1].id) if len(rows) > page_size else None,
        }
