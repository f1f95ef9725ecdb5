"""Partner systems and the WS-Security nonces they have used."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from his_pacs_ws.db.models import PartnerSystem, UsedNonce
from his_pacs_ws.db.repositories import insert_returning_id


class SystemRepository:
    def __init__(self, session: Session):
        self.session = session

    def get(self, name: str) -> PartnerSystem | None:
        return self.session.scalars(select(PartnerSystem).where(PartnerSystem.name == name)).one_or_none()

    def all(self) -> list[PartnerSystem]:
        return list(self.session.scalars(select(PartnerSystem).order_by(PartnerSystem.name)))

    def add(self, **values) -> int | None:
        return insert_returning_id(self.session, PartnerSystem, values, ["name"])

    def count_failure(self, name: str, at: datetime) -> None:
        self.session.execute(
            update(PartnerSystem).where(PartnerSystem.name == name)
            .values(auth_failures=PartnerSystem.auth_failures + 1, last_failure_at=at)
        )

    def use_nonce(self, system: str, nonce: str, at: datetime) -> bool:
        """Record a nonce; False if this system used it already (a replay)."""
        return insert_returning_id(
            self.session, UsedNonce, {"system": system, "nonce": nonce, "created_at": at}, ["system", "nonce"],
            returning=UsedNonce.system,
        ) is not None

    def prune_nonces(self, before: datetime) -> int:
        return self.session.execute(delete(UsedNonce).where(UsedNonce.created_at < before)).rowcount

    def touch(self, system: PartnerSystem) -> None:
        system.updated_at = func.now()
