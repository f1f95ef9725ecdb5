"""One SOAP call as it goes through the pipeline: guard -> authentication -> operation ->
record. Each stage reads and writes this object, and only this object; it travels in the
WSGI environ under one key so that spyne's hooks find it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from his_pacs_ws.domain.access import Caller

ENVIRON_KEY = "his_pacs_ws.call"


@dataclass
class Call:
    """What came in, who sent it, what it was about and how it ended: the call record's
    facts, filled in stage by stage."""

    service: str  # "HIS" or "PACS": whose endpoint was called
    remote_addr: str | None = None
    started: float = field(default_factory=time.perf_counter)
    # the guard
    body: bytes | None = None  # as received, at most the size limit
    root: Any = None  # the guard's parse of ``body`` (an lxml element), None if refused before
    # authentication
    caller: Caller | None = None
    claimed: str | None = None  # the user name of a token that was refused
    # the operation
    operation: str | None = None
    message_id: str | None = None
    application_no: str | None = None
    patient_id: str | None = None
    replayed: bool = False
    # a change whose COMMIT waits for the record (UnitOfWork.hold_commit), if any
    transaction: Any = None
    # the outcome
    fault_code: str | None = None

    @classmethod
    def start(cls, environ: dict, service: str) -> "Call":
        call = cls(service=service, remote_addr=(environ.get("REMOTE_ADDR") or "")[:64] or None)
        environ[ENVIRON_KEY] = call
        return call

    @staticmethod
    def of(environ: dict) -> "Call":
        return environ[ENVIRON_KEY]

    def note_request(self, plain: dict) -> None:
        """The keys a request names, for the record's search."""
        self.message_id = plain.get("message_id")
        self.application_no = plain.get("application_no")
        self.patient_id = plain.get("patient_id") or (plain.get("patient") or {}).get("patient_id")

    def note_subject(self, result: dict) -> None:
        """Which application and patient a call was about, when the request did not say (an
        acknowledgement names only its CriticalValueNo)."""
        for part in (result, result.get("application"), result.get("critical_value")):
            if isinstance(part, dict):
                self.application_no = self.application_no or part.get("application_no")
                self.patient_id = self.patient_id or part.get("patient_id")

    def note_facts(self, facts: dict) -> None:
        """Operation and keys read from a request spyne refused (see ``app._facts_from``)."""
        for key in ("operation", "message_id", "application_no", "patient_id"):
            if key in facts:
                setattr(self, key, facts[key])

    @property
    def caller_name(self) -> str | None:
        return self.caller.name if self.caller else self.claimed

    def duration_ms(self) -> Decimal:
        return Decimal(str(round((time.perf_counter() - self.started) * 1000, 2)))

    def record(self, request: bytes | None, response: bytes) -> dict:
        """The call record's row."""
        return {
            "at": datetime.now(timezone.utc), "service": self.service, "caller": self.caller_name,
            "operation": self.operation, "message_id": self.message_id,
            "application_no": self.application_no, "patient_id": self.patient_id,
            "outcome": "FAULT" if self.fault_code else "OK", "fault_code": self.fault_code,
            "duration_ms": self.duration_ms(), "replayed": self.replayed, "remote_addr": self.remote_addr,
            "request_body": request, "response_body": response,
        }
