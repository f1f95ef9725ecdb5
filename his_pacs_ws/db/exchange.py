"""The exchange schema (view mode): partner login roles, their grants, and the PACS inbox.

The views themselves are SQL in migration 0006; this module grants them to PostgreSQL login
roles, reads and marks inbox rows, and waits for the inbox's notifications.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Identity,
    String,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import conv

from his_pacs_ws.db.models import Base, CallRecord, one_of
from his_pacs_ws.domain.access import PARTNER_ROLES, Role
from his_pacs_ws.domain.exchange import InboxState

NOTIFY_CHANNEL = "his_pacs_inbox"
# The views a partner may read, and what a PACS may write.
VIEWS = ("worklist", "worklist_items", "application_status", "reports", "critical_values", "charges", "refunds")
INBOX_WRITABLE = (
    "message_id", "operation", "application_no", "status", "occurred_at", "operator_code", "operator_name",
    "accession_no", "room", "note", "report_no", "result_status", "findings", "impression", "positive",
    "reporting_doctor_code", "reporting_doctor_name", "reported_at", "verifying_doctor_code",
    "verifying_doctor_name", "verified_at", "study_instance_uid", "viewer_url", "image_urls", "pdf_url",
    "critical_value_no", "finding", "reviewed_by_code", "reviewed_by_name", "contact_phone", "reason",
)
# A partner's session: no query runs for ever, and no open transaction holds back the change
# numbers of everyone's views (see migration 0006) for longer than a minute.
ROLE_SETTINGS = {"statement_timeout": "60s", "idle_in_transaction_session_timeout": "60s"}
CONNECTION_LIMIT = 20


class ExchangePartner(Base):
    """A partner that reads the exchange views (and a PACS, writes the inbox) as a login role."""

    __tablename__ = "exchange_partners"
    # Created inline by migration 0006, hence PostgreSQL's own name for it.
    __table_args__ = (one_of("role", PARTNER_ROLES, name=conv("exchange_partners_role_check")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    db_role: Mapped[str] = mapped_column(String(63), unique=True)
    role: Mapped[str] = mapped_column(String(8))
    departments: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class InboxRow(Base):
    """One event a PACS wrote into exchange.pacs_inbox, and how it was processed."""

    __tablename__ = "pacs_inbox"
    __table_args__ = (one_of("state", InboxState, name=conv("pacs_inbox_state_check")), {"schema": "exchange"})

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    partner_role: Mapped[str] = mapped_column(String(63), server_default=text("current_user"))
    message_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(32))
    application_no: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    operator_code: Mapped[str | None] = mapped_column(String(64))
    operator_name: Mapped[str | None] = mapped_column(String(100))
    accession_no: Mapped[str | None] = mapped_column(String(64))
    room: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    report_no: Mapped[str | None] = mapped_column(String(64))
    result_status: Mapped[str | None] = mapped_column(String(16))
    findings: Mapped[str | None] = mapped_column(Text)
    impression: Mapped[str | None] = mapped_column(Text)
    positive: Mapped[bool | None] = mapped_column(Boolean)
    reporting_doctor_code: Mapped[str | None] = mapped_column(String(64))
    reporting_doctor_name: Mapped[str | None] = mapped_column(String(100))
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verifying_doctor_code: Mapped[str | None] = mapped_column(String(64))
    verifying_doctor_name: Mapped[str | None] = mapped_column(String(100))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    study_instance_uid: Mapped[str | None] = mapped_column(String(64))
    viewer_url: Mapped[str | None] = mapped_column(Text)
    image_urls: Mapped[str | None] = mapped_column(Text)
    pdf_url: Mapped[str | None] = mapped_column(Text)
    critical_value_no: Mapped[str | None] = mapped_column(String(64))
    finding: Mapped[str | None] = mapped_column(Text)
    reviewed_by_code: Mapped[str | None] = mapped_column(String(64))
    reviewed_by_name: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    state: Mapped[str] = mapped_column(String(10), server_default=InboxState.PENDING.value)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fault_code: Mapped[str | None] = mapped_column(String(64))
    fault_message: Mapped[str | None] = mapped_column(Text)
    replayed: Mapped[bool | None] = mapped_column(Boolean)
    status_after: Mapped[str | None] = mapped_column(String(16))
    call_record_id: Mapped[int | None] = mapped_column(BigInteger)

    def event_columns(self) -> dict:
        """What the partner wrote, as plain data (None where it wrote nothing)."""
        return {name: getattr(self, name) for name in INBOX_WRITABLE}


class RoleNotPermitted(Exception):
    """The database user may not create, change or drop login roles."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class ExchangeRepository:
    def __init__(self, session: Session):
        self.session = session

    # --- partners and their roles -------------------------------------------------------

    def partner(self, name: str) -> ExchangePartner | None:
        return self.session.scalars(select(ExchangePartner).where(ExchangePartner.name == name)).one_or_none()

    def partner_by_role(self, db_role: str) -> ExchangePartner | None:
        return self.session.scalars(
            select(ExchangePartner).where(ExchangePartner.db_role == db_role)).one_or_none()

    def partners(self) -> list[ExchangePartner]:
        return list(self.session.scalars(select(ExchangePartner).order_by(ExchangePartner.name)))

    def role_exists(self, db_role: str) -> bool:
        return self.session.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": db_role}) is not None

    def inbox_counts(self) -> dict[str, dict[str, int]]:
        rows = self.session.execute(text(
            "SELECT partner_role, state, count(*) FROM exchange.pacs_inbox GROUP BY partner_role, state"))
        counts: dict[str, dict[str, int]] = {}
        for role, state, count in rows:
            counts.setdefault(role, {})[state] = count
        return counts

    def _verifier(self, db_role: str, password: str) -> str:
        """The SCRAM verifier, computed here: the password itself never reaches the server (nor
        its statement log)."""
        pgconn = self.session.connection().connection.driver_connection.pgconn
        return pgconn.encrypt_password(password.encode(), db_role.encode(), b"scram-sha-256").decode()

    def touch(self, partner: ExchangePartner) -> None:
        partner.updated_at = func.now()

    def create_login_role(self, db_role: str, password: str) -> None:
        role = _ident(db_role)
        self._ddl(
            f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION "
            f"CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD {_literal(self._verifier(db_role, password))}")
        for setting, value in ROLE_SETTINGS.items():
            self._ddl(f"ALTER ROLE {role} SET {setting} = {_literal(value)}")

    def _ddl(self, statement: str) -> None:
        # Not text(): a SCRAM verifier holds colons, which text() would read as parameters.
        try:
            self.session.connection().exec_driver_sql(statement)
        except DBAPIError as err:
            if getattr(err.orig, "sqlstate", None) == "42501":  # insufficient_privilege
                raise RoleNotPermitted(
                    "the database user of his-pacs-ws may not manage login roles: give it CREATEROLE "
                    "(ALTER ROLE ... CREATEROLE), or run this as a user that has it") from None
            raise

    def set_password(self, db_role: str, password: str) -> None:
        self._ddl(f"ALTER ROLE {_ident(db_role)} PASSWORD {_literal(self._verifier(db_role, password))}")

    def grant(self, db_role: str, partner_role: str) -> None:
        """SELECT on the views; for a PACS, writing (and reading its own rows of) the inbox."""
        role = _ident(db_role)
        database = self.session.scalar(text("SELECT current_database()"))
        self._ddl(f"GRANT CONNECT ON DATABASE {_ident(database)} TO {role}")
        self._ddl(f"GRANT USAGE ON SCHEMA exchange TO {role}")
        views = ", ".join(f"exchange.{v}" for v in VIEWS)
        self._ddl(f"GRANT SELECT ON {views} TO {role}")
        if partner_role == Role.PACS.value:
            self._ddl(f"GRANT SELECT ON exchange.pacs_inbox TO {role}")
            self._ddl(f"GRANT INSERT ({', '.join(INBOX_WRITABLE)}) ON exchange.pacs_inbox TO {role}")
        else:
            self._ddl(f"REVOKE ALL ON exchange.pacs_inbox FROM {role}")

    def add_partner(self, name: str, db_role: str, role: str, departments: list[str] | None) -> None:
        self.session.add(ExchangePartner(name=name, db_role=db_role, role=role, departments=departments))

    def drop_login_role(self, db_role: str) -> int:
        """End the role's sessions, take back its grants here, and drop it. The number of
        sessions ended."""
        role = _ident(db_role)
        ended = 0
        if self.role_exists(db_role):
            try:  # a server admin may not be allowed to; the grants go all the same
                with self.session.begin_nested():
                    ended = self.session.scalar(text(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE usename = :r"), {"r": db_role}) or 0
            except DBAPIError:
                ended = 0
            # Take back exactly what grant gave (DROP OWNED would need the role's own rights,
            # which a CREATEROLE user of PostgreSQL 16 does not have over roles it created).
            database = self.session.scalar(text("SELECT current_database()"))
            self._ddl(f"REVOKE ALL ON exchange.pacs_inbox, {', '.join(f'exchange.{v}' for v in VIEWS)} FROM {role}")
            self._ddl(f"REVOKE ALL ON SCHEMA exchange FROM {role}")
            self._ddl(f"REVOKE ALL ON DATABASE {_ident(database)} FROM {role}")
            try:
                self._ddl(f"DROP ROLE {role}")
            except DBAPIError as err:
                if getattr(err.orig, "sqlstate", None) != "2BP01":  # dependent_objects_still_exist
                    raise
                raise RoleNotPermitted(f"the role {db_role} was given other privileges (here or in another "
                                       "database of this server): revoke them (DROP OWNED BY) first") from None
        return ended

    def remove_partner(self, partner: ExchangePartner) -> None:
        self.session.delete(partner)

    # --- the inbox ---------------------------------------------------------------------------

    def next_pending(self) -> InboxRow | None:
        """The oldest pending row no other processor holds, row-locked until commit."""
        return self.session.scalars(
            select(InboxRow).where(InboxRow.state == InboxState.PENDING.value).order_by(InboxRow.id)
            .limit(1).with_for_update(skip_locked=True)
        ).one_or_none()

    def inbox_row(self, pk: int) -> InboxRow | None:
        return self.session.get(InboxRow, pk)

    def pending_count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(InboxRow).where(InboxRow.state == InboxState.PENDING.value))

    def add_call_record(self, values: dict) -> int:
        """A call record in this transaction: it commits with the row's outcome, or not at all."""
        return self.session.execute(insert(CallRecord).values(**values).returning(CallRecord.id)).scalar_one()


class InboxListener:
    """A connection LISTENing to the inbox: ``wait`` returns when a row was inserted or the
    timeout passed (the caller sweeps either way: a notification can be missed while
    reconnecting)."""

    def __init__(self, database_url: str):
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._conn: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._conninfo, autocommit=True)
            self._conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return self._conn

    def wait(self, timeout: float) -> bool:
        try:
            conn = self._connect()
            notified = False
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                notified = True
            return notified
        except psycopg.OperationalError:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
