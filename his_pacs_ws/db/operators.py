"""Console operators, their sessions and the audit of what they did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from his_pacs_ws.db.models import Operator, OperatorAudit, OperatorSession
from his_pacs_ws.db.repositories import insert_returning_id


class OperatorRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, name: str) -> Operator | None:
        return self.session.scalars(select(Operator).where(Operator.name == name)).one_or_none()

    def get_by_pk(self, pk: int) -> Operator | None:
        return self.session.get(Operator, pk)

    def all(self) -> list[Operator]:
        return list(self.session.scalars(select(Operator).order_by(Operator.name)))

    def add(self, **values) -> int | None:
        return insert_returning_id(self.session, Operator, values, ["name"])

    def touch(self, operator: Operator) -> None:
        operator.updated_at = func.now()

    # sessions
    def add_session(self, **values) -> None:
        self.session.add(OperatorSession(**values))
        self.session.flush()

    def session_by_token(self, token_hash: str) -> tuple[OperatorSession, Operator] | None:
        row = self.session.execute(
            select(OperatorSession, Operator).join(Operator, Operator.id == OperatorSession.operator_pk)
            .where(OperatorSession.token_hash == token_hash)
        ).one_or_none()
        return (row[0], row[1]) if row else None

    def drop_session(self, token_hash: str) -> int:
        return self.session.execute(delete(OperatorSession).where(OperatorSession.token_hash == token_hash)).rowcount

    def drop_sessions_of(self, operator_pk: int) -> int:
        return self.session.execute(delete(OperatorSession).where(OperatorSession.operator_pk == operator_pk)).rowcount

    def prune_sessions(self, before: datetime) -> int:
        return self.session.execute(delete(OperatorSession).where(OperatorSession.expires_at < before)).rowcount

    def seen(self, session_pk: int, at: datetime, expires_at: datetime) -> None:
        self.session.execute(update(OperatorSession).where(OperatorSession.id == session_pk)
                             .values(last_seen_at=at, expires_at=expires_at))

    # audit
    def audit(self, **values) -> None:
        self.session.add(OperatorAudit(**values))

    def failures_since(self, since: datetime, *, operator_name: str | None = None,
                       remote_addr: str | None = None) -> int:
        stmt = select(func.count()).select_from(OperatorAudit).where(
            OperatorAudit.action == "SIGN_IN", OperatorAudit.outcome == "FAILED", OperatorAudit.at >= since)
        if operator_name is not None:
            stmt = stmt.where(OperatorAudit.operator_name == operator_name)
        if remote_addr is not None:
            stmt = stmt.where(OperatorAudit.remote_addr == remote_addr)
        return self.session.scalar(stmt)

    def audit_log(self, *, since: datetime | None = None, operator_name: str | None = None,
                  limit: int = 200) -> list[OperatorAudit]:
        stmt = select(OperatorAudit).order_by(OperatorAudit.at.desc(), OperatorAudit.id.desc()).limit(limit)
        if since is not None:
            stmt = stmt.where(OperatorAudit.at >= since)
        if operator_name:
            stmt = stmt.where(OperatorAudit.operator_name == operator_name)
        return list(self.session.scalars(stmt))
