"""SQLAlchemy 2 models. Unique constraints back every business key: they are the last line
of defence for idempotency when two requests race."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from his_pacs_ws.domain.access import PARTNER_ROLES, OperatorRole
from his_pacs_ws.domain.billing import RefundSource, Trigger
from his_pacs_ws.domain.critical import CriticalStatus
from his_pacs_ws.domain.notifications import CallbackPasswordType, DeliveryStatus
from his_pacs_ws.domain.reports import ResultStatus
from his_pacs_ws.domain.status import Status

MONEY = Numeric(14, 2)
QUANTITY = Numeric(14, 3)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def one_of(column: str, values: Iterable[enum.Enum | str], *, name: str | None = None) -> CheckConstraint:
    """CHECK that ``column`` holds one of ``values``, a domain enum's usually: the rules, the
    wire types and the database then allow the same values. The values are kept in ``info``,
    where a test compares them with the migrated database's constraints."""
    allowed = tuple(v.value if isinstance(v, enum.Enum) else v for v in values)
    literals = ",".join(f"'{v}'" for v in allowed)
    return CheckConstraint(f"{column} IN ({literals})", name=name or column,
                           info={"one_of": (column, allowed)})


def timestamp_now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Patient(Base):
    """The latest demographics HIS sent for a patient (登记号)."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), unique=True)
    # Unknown until an application names them: PublishEmr carries only the PatientId.
    name: Mapped[str | None] = mapped_column(String(100))
    sex: Mapped[str | None] = mapped_column(String(1))
    birth_date: Mapped[date | None] = mapped_column(Date)
    id_card_no: Mapped[str | None] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class Visit(Base):
    """A visit (就诊): outpatient registration or inpatient admission."""

    __tablename__ = "visits"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    visit_no: Mapped[str] = mapped_column(String(64), unique=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    patient_type: Mapped[str] = mapped_column(String(16))
    visit_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inpatient_no: Mapped[str | None] = mapped_column(String(64))
    ward_code: Mapped[str | None] = mapped_column(String(64))
    ward_name: Mapped[str | None] = mapped_column(String(100))
    bed_no: Mapped[str | None] = mapped_column(String(32))
    department_code: Mapped[str | None] = mapped_column(String(64))
    department_name: Mapped[str | None] = mapped_column(String(100))
    diagnosis: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class Application(Base):
    """An exam application (电子申请单) and its current state."""

    __tablename__ = "applications"
    __table_args__ = (
        one_of("status", Status),
        Index("ix_applications_worklist", "status", "executing_department_code", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    application_no: Mapped[str] = mapped_column(String(64), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    visit_pk: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    # Searchable copies; the full submitted Patient and Visit are kept as sent.
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    patient_name: Mapped[str] = mapped_column(String(100))
    patient_type: Mapped[str] = mapped_column(String(16))
    patient_snapshot: Mapped[dict] = mapped_column(JSONB)
    visit_snapshot: Mapped[dict] = mapped_column(JSONB)
    ordering_doctor_code: Mapped[str] = mapped_column(String(64))
    ordering_doctor_name: Mapped[str] = mapped_column(String(100))
    ordering_department_code: Mapped[str] = mapped_column(String(64))
    ordering_department_name: Mapped[str | None] = mapped_column(String(100))
    executing_department_code: Mapped[str] = mapped_column(String(64))
    executing_department_name: Mapped[str | None] = mapped_column(String(100))
    ordered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    clinical_diagnosis: Mapped[str | None] = mapped_column(Text)
    clinical_history: Mapped[str | None] = mapped_column(Text)
    exam_purpose: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str | None] = mapped_column(String(16))
    total_amount: Mapped[Decimal] = mapped_column(MONEY)
    accession_no: Mapped[str | None] = mapped_column(String(64), index=True)
    # The charge point in force when the application was released: a setting changed
    # later must not charge an inpatient twice or not at all.
    charge_point: Mapped[str | None] = mapped_column(String(16))
    # When payment or the nurse's send put it on the PACS worklist. PACS never sees an
    # application without it, not even after a cancellation.
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    invoice_no: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class ApplicationItem(Base):
    """An ordered item; package components point at their package through ``parent_pk``."""

    __tablename__ = "application_items"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    application_pk: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    parent_pk: Mapped[int | None] = mapped_column(ForeignKey("application_items.id"))
    position: Mapped[int] = mapped_column(Integer)
    item_code: Mapped[str] = mapped_column(String(64))
    item_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    modality: Mapped[str | None] = mapped_column(String(16), index=True)
    body_part: Mapped[str | None] = mapped_column(String(100))


class StatusEvent(Base):
    """The timeline: every status event, applied or stale, in arrival order."""

    __tablename__ = "status_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    application_pk: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    applied: Mapped[bool] = mapped_column(Boolean)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    operator_code: Mapped[str | None] = mapped_column(String(64))
    operator_name: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(Text)
    room: Mapped[str | None] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = timestamp_now()


class ChargeRequest(Base):
    """A PACS Charge request, unique by ChargeRequestNo."""

    __tablename__ = "charge_requests"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    charge_request_no: Mapped[str] = mapped_column(String(64), unique=True)
    application_pk: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = timestamp_now()


class ChargeLine(Base):
    """A ledger line. Never updated in place: refunds are lines of their own."""

    __tablename__ = "charge_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        one_of("trigger", Trigger),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    application_pk: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    charge_request_pk: Mapped[int | None] = mapped_column(ForeignKey("charge_requests.id"), index=True)
    item_code: Mapped[str] = mapped_column(String(64))
    item_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    unit_price: Mapped[Decimal] = mapped_column(MONEY)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    trigger: Mapped[str] = mapped_column(String(16))
    package_item_code: Mapped[str | None] = mapped_column(String(64))
    operator_code: Mapped[str | None] = mapped_column(String(64))
    operator_name: Mapped[str | None] = mapped_column(String(100))
    charged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = timestamp_now()


class RefundRequest(Base):
    """A PACS Refund request, unique by RefundRequestNo."""

    __tablename__ = "refund_requests"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    refund_request_no: Mapped[str] = mapped_column(String(64), unique=True)
    application_pk: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = timestamp_now()


class RefundLine(Base):
    """A refund (or automatic reversal) of part or all of one charge line."""

    __tablename__ = "refund_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
        one_of("source", RefundSource),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    charge_line_pk: Mapped[int] = mapped_column(ForeignKey("charge_lines.id"), index=True)
    refund_request_pk: Mapped[int | None] = mapped_column(ForeignKey("refund_requests.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reason: Mapped[str | None] = mapped_column(Text)
    operator_code: Mapped[str | None] = mapped_column(String(64))
    operator_name: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(24))
    refunded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[datetime] = timestamp_now()


class ProcessedMessage(Base):
    """A MessageId a caller has used, with the response (or fault) it got.

    The row is inserted in the same transaction as the change it answers, so a retry
    either finds it or waits for it on the unique key: never both apply.
    """

    __tablename__ = "processed_messages"
    __table_args__ = (UniqueConstraint("caller", "message_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    caller: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict | None] = mapped_column(JSONB)
    fault_code: Mapped[str | None] = mapped_column(String(64))
    fault_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()


class CallRecord(Base):
    """Every call: who, what, about which application, how it ended and how long it took."""

    __tablename__ = "call_records"
    __table_args__ = (
        Index("ix_call_records_application_no_at", "application_no", "at"),
        Index("ix_call_records_patient_id_at", "patient_id", "at"),
        Index("ix_call_records_message_id", "message_id"),
        Index("ix_call_records_at", "at"),
        Index("ix_call_records_caller_at", "caller", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    service: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str | None] = mapped_column(String(64))
    operation: Mapped[str | None] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(64))
    application_no: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(8))
    fault_code: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    replayed: Mapped[bool] = mapped_column(Boolean, default=False)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    # The exchange as it crossed the wire; pruned after a while, the rest of the row kept.
    request_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    # 'in' for calls partners made, 'out' for our delivery attempts to their callbacks
    direction: Mapped[str] = mapped_column(String(3), default="in", server_default="in")
    delivery_pk: Mapped[int | None] = mapped_column(BigInteger, index=True)


class Report(Base):
    """One version of a report. A report's history is its versions; none is updated."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("report_no", "version"),
        one_of("result_status", ResultStatus),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    application_pk: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    report_no: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    result_status: Mapped[str] = mapped_column(String(16))
    content_hash: Mapped[str] = mapped_column(String(64))
    accession_no: Mapped[str | None] = mapped_column(String(64))
    findings: Mapped[str | None] = mapped_column(Text)
    impression: Mapped[str | None] = mapped_column(Text)
    positive: Mapped[bool | None] = mapped_column(Boolean)
    reporting_doctor_code: Mapped[str] = mapped_column(String(64))
    reporting_doctor_name: Mapped[str] = mapped_column(String(100))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    verifying_doctor_code: Mapped[str | None] = mapped_column(String(64))
    verifying_doctor_name: Mapped[str | None] = mapped_column(String(100))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    study_instance_uid: Mapped[str | None] = mapped_column(String(64))
    viewer_url: Mapped[str | None] = mapped_column(Text)
    image_urls: Mapped[list | None] = mapped_column(JSONB)
    pdf_url: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = timestamp_now()


class CriticalValue(Base):
    """A critical value (危急值) and every step of its loop, with who and when."""

    __tablename__ = "critical_values"
    __table_args__ = (
        one_of("status", CriticalStatus),
        Index("ix_critical_values_reported_at", "reported_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    critical_value_no: Mapped[str] = mapped_column(String(64), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    application_pk: Mapped[int] = mapped_column(ForeignKey("applications.id"), index=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    patient_name: Mapped[str] = mapped_column(String(100))
    department_code: Mapped[str] = mapped_column(String(64), index=True)
    report_no: Mapped[str | None] = mapped_column(String(64))
    finding: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    contact_phone: Mapped[str | None] = mapped_column(String(64))
    reported_by_code: Mapped[str] = mapped_column(String(64))
    reported_by_name: Mapped[str] = mapped_column(String(100))
    reviewed_by_code: Mapped[str | None] = mapped_column(String(64))
    reviewed_by_name: Mapped[str | None] = mapped_column(String(100))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ack_deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_by_code: Mapped[str | None] = mapped_column(String(64))
    received_by_name: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    read_back_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    handled_by_code: Mapped[str | None] = mapped_column(String(64))
    handled_by_name: Mapped[str | None] = mapped_column(String(100))
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handling_opinion: Mapped[str | None] = mapped_column(Text)
    revoked_by_code: Mapped[str | None] = mapped_column(String(64))
    revoked_by_name: Mapped[str | None] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    # When the HIS was told the deadline passed (CriticalValueOverdue): once, by one deliverer
    overdue_notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()


class EmrDocument(Base):
    """An EMR document (病历文书) as HIS published it; a newer Version replaces it."""

    __tablename__ = "emr_documents"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    visit_pk: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    document_type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    author_name: Mapped[str | None] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = timestamp_now()


class EmrOrder(Base):
    """A doctor's order (医嘱) of a visit, as HIS last published it."""

    __tablename__ = "emr_orders"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_no: Mapped[str] = mapped_column(String(64), unique=True)
    patient_pk: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    visit_pk: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    order_type: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    ordered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = timestamp_now()


class EmrAccess(Base):
    """Every QueryEmr: who read which patient's record, when, and how much of it."""

    __tablename__ = "emr_accesses"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = timestamp_now()
    caller: Mapped[str] = mapped_column(String(64))
    requested_by_code: Mapped[str | None] = mapped_column(String(64))
    requested_by_name: Mapped[str | None] = mapped_column(String(100))
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    visit_no: Mapped[str | None] = mapped_column(String(64))
    application_no: Mapped[str | None] = mapped_column(String(64))
    documents_returned: Mapped[int] = mapped_column(Integer)
    orders_returned: Mapped[int] = mapped_column(Integer)


class PartnerSystem(Base):
    """A HIS or PACS allowed to call: its role, departments, and its secret, encrypted."""

    __tablename__ = "systems"
    __table_args__ = (one_of("role", PARTNER_ROLES),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(8))
    departments: Mapped[list | None] = mapped_column(JSONB)  # None: every department
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # AES-GCM: nonce + ciphertext
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    auth_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class UsedNonce(Base):
    """WS-Security nonces seen lately, shared by every worker: a token is accepted once."""

    __tablename__ = "ws_nonces"

    system: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class CallbackEndpoint(Base):
    """Where a partner system receives notifications, and how that has been going."""

    __tablename__ = "callback_endpoints"
    __table_args__ = (one_of("password_type", CallbackPasswordType),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    system_pk: Mapped[int] = mapped_column(ForeignKey("systems.id"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list | None] = mapped_column(JSONB)  # None: every notification of the role
    username: Mapped[str | None] = mapped_column(String(100))
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # AES-GCM, like the systems' own
    password_type: Mapped[str] = mapped_column(String(8), default=CallbackPasswordType.DIGEST.value)
    timeout_seconds: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal(10))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # The receiver's health: consecutive failed attempts, since when, and when to try again
    # when it cannot be reached at all.
    failure_streak: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class OutboxEvent(Base):
    """A change to tell partners about, written in the transaction that made it. Its id is
    the notification's Sequence: the application's row lock orders them per application."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_pending", "id", postgresql_where="NOT fanned_out"),
        Index("ix_outbox_events_application_no", "application_no"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    target_role: Mapped[str] = mapped_column(String(8))
    application_no: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(64))
    department_code: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONB)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)


class Delivery(Base):
    """One notification to one receiver, and where its delivery stands."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_pk", "system_pk"),
        one_of("status", DeliveryStatus),
        Index("ix_deliveries_open", "system_pk", "application_no", "event_pk",
              postgresql_where="status IN ('PENDING','RETRYING')"),
        Index("ix_deliveries_due", "next_attempt_at", postgresql_where="status IN ('PENDING','RETRYING')"),
        Index("ix_deliveries_status_system", "status", "system_pk"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_pk: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"))
    system_pk: Mapped[int] = mapped_column(ForeignKey("systems.id"))
    application_no: Mapped[str] = mapped_column(String(64))  # the ordering key, with system_pk
    status: Mapped[str] = mapped_column(String(12))
    priority: Mapped[int] = mapped_column(Integer)  # 0: critical values, 1: the rest
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_outcome: Mapped[str | None] = mapped_column(String(20))
    last_http_status: Mapped[int | None] = mapped_column(Integer)
    last_fault_code: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    # A deliverer sending it holds a lease, not a transaction: others leave it alone until then
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class Operator(Base):
    """A person who signs in to the console: hospital IT, the quality office, vendors' support.
    Partner systems never sign in here; operators never call the SOAP services."""

    __tablename__ = "operators"
    __table_args__ = (one_of("role", OperatorRole),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(8))
    password_hash: Mapped[str] = mapped_column(Text)  # scrypt$N$r$p$salt$hash
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = timestamp_now()
    updated_at: Mapped[datetime] = timestamp_now()


class OperatorSession(Base):
    """A signed-in browser. Only the token's digest is stored: a copy of the table signs no one in."""

    __tablename__ = "operator_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_pk: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class OperatorAudit(Base):
    """Every sign-in (good or bad), sign-out and admin action in the console: who, what, when."""

    __tablename__ = "operator_audit"
    __table_args__ = (
        Index("ix_operator_audit_operator_at", "operator_name", "at"),
        Index("ix_operator_audit_remote_addr_at", "remote_addr", "at"),
        Index("ix_operator_audit_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    operator_name: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
