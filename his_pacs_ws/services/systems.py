"""Partner systems, as hospital IT manages them from the command line."""

from __future__ import annotations

import re

from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.domain.access import Role
from his_pacs_ws.services.secrets import SecretBox

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MIN_PASSWORD = 12


class SystemCommandError(ValueError):
    """A refused system command, with a message for the operator."""


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise SystemCommandError(f"the password needs at least {MIN_PASSWORD} characters")


def add_system(uow: UnitOfWork, box: SecretBox, name: str, role: str, password: str,
               departments: list[str] | None) -> None:
    if not NAME.match(name):
        raise SystemCommandError("a system name is 1-64 letters, digits, '.', '_' or '-'")
    role_ = Role(role)
    if role_ is Role.ADMIN:
        raise SystemCommandError("a system's role is HIS or PACS")
    if departments is not None and role_ is not Role.PACS:
        raise SystemCommandError("--departments applies to PACS systems")
    _check_password(password)
    with uow:
        if uow.systems.add(name=name, role=role_.value, departments=departments, secret=box.seal(password, name),
                           enabled=True, auth_failures=0) is None:
            raise SystemCommandError(f"system {name} exists already")
        uow.commit()


def set_password(uow: UnitOfWork, box: SecretBox, name: str, password: str) -> None:
    _check_password(password)
    with uow:
        system = _get(uow, name)
        system.secret = box.seal(password, name)
        uow.systems.touch(system)
        uow.commit()


def set_enabled(uow: UnitOfWork, name: str, enabled: bool) -> None:
    with uow:
        system = _get(uow, name)
        system.enabled = enabled
        uow.systems.touch(system)
        uow.commit()


def list_systems(uow: UnitOfWork) -> list[dict]:
    with uow:
        return [
            {"name": s.name, "role": s.role, "departments": s.departments, "enabled": s.enabled,
             "auth_failures": s.auth_failures, "last_failure_at": s.last_failure_at,
             "created_at": s.created_at, "updated_at": s.updated_at}
            for s in uow.systems.all()
        ]


def _get(uow: UnitOfWork, name: str):
    system = uow.systems.get(name)
    if system is None:
        raise SystemCommandError(f"no system named {name}")
    return system


def unreadable_secrets(uow: UnitOfWork, box: SecretBox) -> list[str]:
    """The systems whose password this key cannot open: a server started with another
    key than the one the systems were added with would refuse them all."""
    names = []
    with uow:
        for system in uow.systems.all():
            try:
                box.open(system.secret, system.name)
            except Exception:
                names.append(system.name)
    return names
