"""View mode: partner login roles that read the exchange views, as hospital IT grants them."""

from __future__ import annotations

import re

from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.db.exchange import RoleNotPermitted
from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.domain.exchange import InboxState
from his_pacs_ws.services.systems import MIN_PASSWORD, SystemCommandError

# The name is the PostgreSQL login role too: lower case, so that a vendor's tool may write it
# unquoted in SQL and a JDBC or ODBC user name means the same.
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
RESERVED = re.compile(r"^(pg_|postgres$|public$)")


def _departments(departments: list[str] | None) -> list[str] | None:
    if departments is None:
        return None
    cleaned = sorted({d.strip() for d in departments if d.strip()})
    if not cleaned:
        raise SystemCommandError("--departments names at least one department code")
    return cleaned


def grant(uow: UnitOfWork, name: str, role: str, password: str, departments: list[str] | None) -> str:
    """Create (or update) the partner's login role with SELECT on the views of its rows, and
    for a PACS the inbox. Returns 'granted' or 'updated'."""
    if not ROLE_NAME.match(name) or RESERVED.match(name):
        raise SystemCommandError("a view partner's name is its database login: 2-63 lower-case letters, digits "
                                 "or '_', starting with a letter (not pg_..., postgres or public)")
    role_ = Role(role)
    if role_ is Role.ADMIN:
        raise SystemCommandError("a view partner's role is HIS or PACS")
    departments = _departments(departments)
    if departments is not None and role_ is not Role.PACS:
        raise SystemCommandError("--departments applies to PACS partners")
    if len(password) < MIN_PASSWORD:
        raise SystemCommandError(f"the password needs at least {MIN_PASSWORD} characters")
    with uow:
        partner = uow.exchange.partner(name)
        login = uow.exchange.role_exists(name)
        if partner is None and login:
            raise SystemCommandError(f"a PostgreSQL role named {name} exists already and is not a view "
                                     "partner of this database: choose another name")
        try:
            if login:
                uow.exchange.set_password(name, password)
            else:  # new, or its login was dropped by hand: (re)create it
                uow.exchange.create_login_role(name, password)
            if partner is None:
                uow.exchange.add_partner(name, name, role_.value, departments)
                outcome = "granted"
            else:
                partner.role, partner.departments = role_.value, departments
                uow.exchange.touch(partner)
                outcome = "updated"
            uow.exchange.grant(name, role_.value)
        except RoleNotPermitted as err:
            raise SystemCommandError(str(err)) from None
        uow.commit()
    return outcome


def revoke(uow: UnitOfWork, name: str) -> int:
    """Drop the partner's login role (ending its sessions); its inbox rows stay, as history.
    Returns the number of sessions ended."""
    with uow:
        partner = uow.exchange.partner(name)
        if partner is None:
            raise SystemCommandError(f"no view partner {name}")
        try:
            ended = uow.exchange.drop_login_role(partner.db_role)
        except RoleNotPermitted as err:
            raise SystemCommandError(str(err)) from None
        uow.exchange.remove_partner(partner)
        uow.commit()
    return ended


def list_partners(uow: UnitOfWork) -> list[dict]:
    with uow:
        counts = uow.exchange.inbox_counts()
        return [{
            "name": p.name, "db_role": p.db_role, "role": p.role, "departments": p.departments,
            "login": uow.exchange.role_exists(p.db_role), "created_at": p.created_at, "updated_at": p.updated_at,
            **{state.value.lower(): counts.get(p.db_role, {}).get(state.value, 0) for state in InboxState},
        } for p in uow.exchange.partners()]


def caller_for(uow: UnitOfWork, db_role: str) -> Caller | None:
    """The partner that wrote an inbox row, as a caller of the use cases (None once revoked)."""
    partner = uow.exchange.partner_by_role(db_role)
    if partner is None:
        return None
    departments = frozenset(partner.departments) if partner.departments is not None else None
    return Caller(partner.name, Role(partner.role), departments)
