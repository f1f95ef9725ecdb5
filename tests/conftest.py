"""Shared fixtures: a real PostgreSQL for the whole run (embedded unless
HIS_PACS_TEST_DATABASE_URL names a server), one fresh database per run, migrated."""

from __future__ import annotations

import os
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from his_pacs_ws.db import migrate
from his_pacs_ws.db.engine import embedded_server, make_engine, normalize_url, session_factory


def _admin_url(tmp_root: Path) -> tuple[str, object]:
    configured = os.environ.get("HIS_PACS_TEST_DATABASE_URL")
    if configured:
        return normalize_url(configured), None
    server = embedded_server(tmp_root / "pgdata", cleanup_mode="delete")
    return normalize_url(server.get_uri()), server


@contextmanager
def migrated_database(admin_url: str, prefix: str = "his_pacs_test"):
    """A new database on the server of ``admin_url``, migrated to head, dropped afterwards:
    its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url, pool_size=1)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url():
    tmp_root = Path(tempfile.mkdtemp(prefix="his-pacs-test-"))
    admin_url, server = _admin_url(tmp_root)
    with migrated_database(admin_url) as url:
        yield url
    if server is not None:
        server.cleanup()


@pytest.fixture(scope="session")
def engine(database_url):
    engine = make_engine(database_url, pool_size=10)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine):
    return session_factory(engine)
