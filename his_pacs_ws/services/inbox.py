"""The PACS inbox: rows a database-only PACS writes into exchange.pacs_inbox, processed by the
same use cases, with the same caller and department scope, as its SOAP calls would be.

Each row is held with a row lock while its use case runs in a transaction of its own; the
row's outcome and its call record commit together afterwards. The row's MessageId is the
idempotency key exactly as on the wire: a second copy replays the first answer, the same
MessageId with other content is MessageIdReused. A crash between the two commits leaves the
row pending, and processing it again replays the answer the use case stored.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Callable

from his_pacs_ws.domain.access import Role
from his_pacs_ws.domain.errors import AccessDenied, SchemaValidationError, ServiceError, Unavailable
from his_pacs_ws.domain.exchange import InboxState
from his_pacs_ws.domain.reports import ResultStatus
from his_pacs_ws.domain.status import PacsEvent
from his_pacs_ws.services import critical_values, exchange, reports, worklist
from his_pacs_ws.services.common import jsonable
from his_pacs_ws.services.messages import Replayed

log = logging.getLogger(__name__)

SERVICE = "PACS_INBOX"  # call_records.service of an inbox row
TEXT_MAX, URL_MAX = 20000, 2000
FIRST_YEAR, LAST_YEAR = 1901, 9998
PACS_EVENTS = tuple(e.value for e in PacsEvent)
RESULT_STATUSES = tuple(r.value for r in ResultStatus)
INTERNAL = ("InternalError", "the service failed to process the request; it has been logged")


class _Row:
    """Reading one inbox row into a use case's request, with the wire's rules: required
    values present, enumerations known, lengths kept. Empty text counts as absent."""

    def __init__(self, columns: dict):
        self.columns = columns

    def value(self, column: str, *, required: bool = False, limit: int | None = None):
        value = self.columns.get(column)
        if isinstance(value, str):
            value = value.strip() or None
        if value is None:
            if required:
                raise SchemaValidationError(f"column {column} is required for {self.columns.get('operation')}")
            return None
        if isinstance(value, str) and limit is not None and len(value) > limit:
            raise SchemaValidationError(f"column {column} is longer than {limit} characters")
        if isinstance(value, datetime) and not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise SchemaValidationError(f"column {column}: a date-time before {FIRST_YEAR} or after "
                                        f"{LAST_YEAR} is not accepted")
        return value

    def choice(self, column: str, choices: tuple[str, ...]) -> str:
        value = self.value(column, required=True)
        if value not in choices:
            raise SchemaValidationError(f"column {column} is not one of {', '.join(choices)}")
        return value

    def staff(self, prefix: str, *, required: bool = False) -> dict | None:
        code, name = self.value(f"{prefix}_code"), self.value(f"{prefix}_name")
        if code is None and name is None and not required:
            return None
        return {"code": self.value(f"{prefix}_code", required=True),
                "name": self.value(f"{prefix}_name", required=True)}

    def urls(self, column: str) -> list[str] | None:
        text = self.value(column)
        if text is None:
            return None
        urls = [line.strip() for line in text.splitlines() if line.strip()]
        if any(len(url) > URL_MAX for url in urls):
            raise SchemaValidationError(f"column {column}: a URL is longer than {URL_MAX} characters")
        return urls


def _present(request: dict) -> dict:
    return {k: v for k, v in request.items() if v is not None}


def _report_status(row: _Row) -> dict:
    return _present({
        "application_no": row.value("application_no", required=True),
        "status": row.choice("status", PACS_EVENTS),
        "occurred_at": row.value("occurred_at", required=True),
        "operator": row.staff("operator", required=True),
        "accession_no": row.value("accession_no"),
        "room": row.value("room"),
        "note": row.value("note", limit=TEXT_MAX),
    })


def _push_report(row: _Row) -> dict:
    return _present({
        "application_no": row.value("application_no", required=True),
        "report_no": row.value("report_no", required=True),
        "result_status": row.choice("result_status", RESULT_STATUSES),
        "reporting_doctor": row.staff("reporting_doctor", required=True),
        "reported_at": row.value("reported_at", required=True),
        "accession_no": row.value("accession_no"),
        "findings": row.value("findings", limit=TEXT_MAX),
        "impression": row.value("impression", limit=TEXT_MAX),
        "positive": row.value("positive"),
        "verifying_doctor": row.staff("verifying_doctor"),
        "verified_at": row.value("verified_at"),
        "study_instance_uid": row.value("study_instance_uid"),
        "viewer_url": row.value("viewer_url", limit=URL_MAX),
        "image_urls": row.urls("image_urls"),
        "pdf_url": row.value("pdf_url", limit=URL_MAX),
    })


def _raise_critical_value(row: _Row) -> dict:
    return _present({
        "critical_value_no": row.value("critical_value_no", required=True),
        "application_no": row.value("application_no", required=True),
        "finding": row.value("finding", required=True, limit=TEXT_MAX),
        "reported_by": row.staff("reporting_doctor", required=True),
        "reported_at": row.value("reported_at", required=True),
        "report_no": row.value("report_no"),
        "reviewed_by": row.staff("reviewed_by"),
        "contact_phone": row.value("contact_phone"),
    })


def _revoke_critical_value(row: _Row) -> dict:
    return {
        "critical_value_no": row.value("critical_value_no", required=True),
        "reason": row.value("reason", required=True, limit=TEXT_MAX),
        "operator": row.staff("operator", required=True),
    }


# operation -> (the SOAP operation's use case, how its request is read from a row)
OPERATIONS: dict[str, tuple[Callable, Callable[[_Row], dict]]] = {
    "ReportStatus": (worklist.report_status, _report_status),
    "PushReport": (reports.push_report, _push_report),
    "RaiseCriticalValue": (critical_values.raise_critical_value, _raise_critical_value),
    "RevokeCriticalValue": (critical_values.revoke, _revoke_critical_value),
}


def request_from(columns: dict) -> dict:
    """The use case's request for an inbox row, as the SOAP edge would hand it over."""
    row = _Row(columns)
    operation = row.value("operation", required=True)
    if operation not in OPERATIONS:
        raise SchemaValidationError(f"column operation is not one of {', '.join(OPERATIONS)}")
    return {"message_id": row.value("message_id", required=True, limit=64), **OPERATIONS[operation][1](row)}


def _subject(result: dict) -> tuple[str | None, str | None, str | None]:
    """Application, patient and resulting status of an answer, for the record and the row."""
    application_no = patient_id = status = None
    for part in (result.get("application"), result.get("critical_value")):
        if isinstance(part, dict):
            application_no = application_no or part.get("application_no")
            patient_id = patient_id or part.get("patient_id")
            status = status or part.get("status")
    return application_no, patient_id, status


def _body(data: dict) -> bytes:
    return json.dumps(jsonable(data), ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


def process_next(context) -> bool:
    """Process the oldest pending inbox row; False when there is none. A database outage
    leaves the row pending (``Unavailable`` propagates) for the next sweep."""
    settings = context.settings
    with context.uow() as uow:
        row = uow.exchange.next_pending()
        if row is None:
            return False
        started = time.perf_counter()
        columns = row.event_columns()
        result, error, caller = None, None, exchange.caller_for(uow, row.partner_role)
        try:
            if caller is None or caller.role is not Role.PACS:
                raise AccessDenied("this inbox row's partner is no longer granted the inbox")
            request = request_from(columns)
            result = OPERATIONS[row.operation][0](context.uow(), settings, caller, request)
        except Unavailable:
            raise
        except ServiceError as err:
            error = (err.code, err.message)
        except Exception as exc:  # like the SOAP edge: logged without patient data, refused
            log.error("internal error processing inbox row %s (%s): %s", row.id, row.operation, type(exc).__name__)
            error = INTERNAL
        now = datetime.now(timezone.utc)
        application_no, patient_id, status_after = _subject(result or {})
        replayed = isinstance(result, Replayed)
        record_id = uow.exchange.add_call_record({
            "at": now, "service": SERVICE, "caller": caller.name if caller else row.partner_role,
            "operation": (row.operation or "")[:64] or None, "message_id": row.message_id,
            "application_no": application_no or columns.get("application_no"),
            "patient_id": patient_id, "outcome": "FAULT" if error else "OK",
            "fault_code": error[0] if error else None,
            "duration_ms": Decimal(str(round((time.perf_counter() - started) * 1000, 2))),
            "replayed": replayed, "remote_addr": f"pacs_inbox:{row.id}",
            "request_body": _body(columns),
            "response_body": _body({"fault_code": error[0], "fault_message": error[1]} if error else result or {}),
        })
        row.state = (InboxState.REFUSED if error else InboxState.PROCESSED).value
        row.processed_at = now
        row.fault_code, row.fault_message = error if error else (None, None)
        row.replayed = replayed
        row.status_after = status_after
        row.call_record_id = record_id
        uow.commit()
        log.info("%s %r caller=%r message_id=%r inbox_row=%s outcome=%s%s", SERVICE, row.operation,
                 caller.name if caller else row.partner_role, row.message_id, row.id,
                 "FAULT " + error[0] if error else "OK", " (replayed)" if replayed else "")
    return True


def drain(context, limit: int = 1000) -> int:
    """Process pending rows until none is left (or ``limit`` were): how many were."""
    count = 0
    while count < limit and process_next(context):
        count += 1
    return count


def run(context, listener, *, sweep_seconds: float, keep_going: Callable[[], bool]) -> None:
    """Process rows as they are inserted (LISTEN/NOTIFY) and sweep every ``sweep_seconds``
    anyway, until ``keep_going`` says stop. Survives the database going away."""
    last_sweep = 0.0
    notified = True
    while keep_going():
        try:
            if notified or time.monotonic() - last_sweep >= sweep_seconds:
                last_sweep = time.monotonic()
                while drain(context) and keep_going():
                    pass
            notified = listener.wait(1.0)
        except Exception as exc:  # the database is down or restarting: wait, then sweep again
            log.warning("inbox processing paused: %s; retrying in 5 s", type(exc).__name__)
            listener.close()
            for _ in range(5):
                if not keep_going():
                    return
                time.sleep(1)
            notified = True
