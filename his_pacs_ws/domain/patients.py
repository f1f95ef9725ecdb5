"""What the contract says of a patient besides names and numbers."""

from __future__ import annotations

import enum


class Sex(str, enum.Enum):
    MALE = "M"
    FEMALE = "F"
    UNKNOWN = "U"
