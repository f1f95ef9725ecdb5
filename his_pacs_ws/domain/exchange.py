"""View mode: where a row a PACS wrote into exchange.pacs_inbox stands."""

from __future__ import annotations

import enum


class InboxState(str, enum.Enum):
    PENDING = "PENDING"      # written by the PACS, not processed yet
    PROCESSED = "PROCESSED"  # answered as the SOAP operation would have answered it
    REFUSED = "REFUSED"      # refused with the fault the SOAP operation would have given
