"""The fault-injection tier: `his-pacs-ws serve` on a PostgreSQL 15 server the test owns,
which the tests stop, crash, freeze and restart under load; gunicorn workers killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.faults.pg import Postgres
from tests.soap.conftest import ROOT, SYSTEMS, free_port, run_cli

DB_TIMEOUT = 2  # seconds: HIS_PACS_DB_TIMEOUT_SECONDS of the served instance


@dataclass
class Served:
    url: str
    pg: Postgres
    process: subprocess.Popen
    log_path: Path
    home: Path

    def worker_pids(self) -> list[int]:
        import psutil

        return [child.pid for child in psutil.Process(self.process.pid).children()]


def start_server(pg: Postgres, home: Path, *, workers: int = 2, wait: bool = True, log_name="server.log") -> Served:
    port = free_port()
    env = {**os.environ, "HIS_PACS_DATA_DIR": str(home), "HIS_PACS_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT),
           "HIS_PACS_LOG_LEVEL": "INFO"}
    log_path = home / log_name
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "his_pacs_ws.cli", "serve", "--database-url", pg.url,
             "--port", str(port), "--workers", str(workers)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    served = Served(f"http://127.0.0.1:{port}", pg, process, log_path, home)
    if wait:
        wait_healthy(served, 60)
    return served


def wait_healthy(served: Served, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if requests.get(served.url + "/health", timeout=1).ok:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        if served.process.poll() is not None:
            raise RuntimeError("server exited:\n" + served.log_path.read_text())
        time.sleep(0.05)
    raise RuntimeError("server not healthy:\n" + served.log_path.read_text())


def stop_server(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        served.process.kill()


@pytest.fixture(scope="module")
def pg():
    server = Postgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def served(pg, tmp_path_factory):
    home = tmp_path_factory.mktemp("faults")
    migrated = run_cli("migrate", "--database-url", pg.url, env={**os.environ, "HIS_PACS_DATA_DIR": str(home)})
    assert migrated.returncode == 0, migrated.stderr  # administration commands never create a schema
    for name, password, options in SYSTEMS:
        added = run_cli("systems", "add", name, *options, "--password-stdin", "--database-url", pg.url,
                        env={**os.environ, "HIS_PACS_DATA_DIR": str(home)}, stdin=password + "\n")
        assert added.returncode == 0, added.stderr
    server = start_server(pg, home)
    try:
        yield server
    finally:
        stop_server(server)
