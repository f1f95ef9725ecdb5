"""Who is calling: a partner system, its role, and the departments it serves."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from his_pacs_ws.domain.errors import AccessDenied


class Role(str, enum.Enum):
    HIS = "HIS"
    PACS = "PACS"
    ADMIN = "ADMIN"  # the command line on the server itself


# What a partner system (or a view partner) can be; ADMIN is never a partner.
PARTNER_ROLES = (Role.HIS, Role.PACS)


class OperatorRole(str, enum.Enum):
    """A person signed in to the console: a viewer reads, an admin also acts."""

    VIEWER = "viewer"
    ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    """An authenticated system. ``departments`` None means every department."""

    name: str
    role: Role
    departments: frozenset[str] | None = None

    def serves(self, department_code: str) -> bool:
        return self.departments is None or department_code in self.departments

    def check_department(self, department_code: str, application_no: str) -> None:
        if not self.serves(department_code):
            raise AccessDenied(
                f"application {application_no} is for a department this system does not serve"
            )

    @property
    def department_list(self) -> list[str] | None:
        return None if self.departments is None else sorted(self.departments)


def check_role(caller: Caller, service_role: Role) -> None:
    """HIS systems call only HisService, PACS systems only PacsService."""
    if caller.role is not service_role:
        raise AccessDenied(f"system {caller.name} is a {caller.role.value} system; "
                           f"this is the {service_role.value} service")
