"""LISTEN/NOTIFY: how deliverers learn at once that an outbox event was committed."""

from __future__ import annotations

import threading
from typing import Callable

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from his_pacs_ws.db.engine import normalize_url


def listen(url: str, channel: str, on_notify: Callable[[str | None], None], stop: threading.Event,
           *, timeout: float = 1.0) -> None:
    """Call ``on_notify`` with each notification's payload on ``channel`` (and with None once
    on connecting, for whatever came before) until ``stop`` is set. Raises when the
    connection fails."""
    engine = create_engine(normalize_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            driver.execute(f"LISTEN {channel}")
            on_notify(None)
            while not stop.is_set():
                for notification in driver.notifies(timeout=timeout, stop_after=1):
                    on_notify(notification.payload)
    finally:
        engine.dispose()
