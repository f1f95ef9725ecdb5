"""Test helpers of push mode: real receivers (scripts/receive_*.py, hosted from the callback
WSDLs with zeep) as subprocesses, and partner systems with callbacks set by the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.soap.conftest import ROOT, free_port, run_cli


class Receiver:
    """scripts/receive_his.py or receive_pacs.py on a port of its own; what it received is
    read back from its --record file."""

    def __init__(self, role: str, tmp: Path, *options: str):
        self.script = ROOT / "scripts" / f"receive_{role}.py"
        self.port = free_port()
        self.record = tmp / f"{role}-{self.port}.jsonl"
        self.log = tmp / f"{role}-{self.port}.log"
        self.options = list(options)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, *options: str) -> "Receiver":
        if options:
            self.options = list(options)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(self.script), "--port", str(self.port), "--record", str(self.record),
                 *self.options], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 30
        while b"listening" not in (self.log.read_bytes() if self.log.exists() else b""):
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def entries(self, *, arrivals: bool = False) -> list[dict]:
        """What the receiver answered (with arrivals=True: when each request came in)."""
        if not self.record.exists():
            return []
        lines = [json.loads(line) for line in self.record.read_text(encoding="utf-8").splitlines() if line]
        return [e for e in lines if (e["outcome"] == "received") == arrivals]

    def applied(self, application_no: str | None = None) -> list[dict]:
        return [e for e in self.entries() if e["outcome"] == "applied"
                and (application_no is None or e["application_no"] == application_no)]

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "notifications"):
        deadline = time.monotonic() + timeout
        while True:
            entries = self.entries()
            found = predicate(entries)
            if found:
                return found
            assert time.monotonic() < deadline, f"no {what} within {timeout} s; got {entries}"
            time.sleep(0.1)


def start_deliverer(database_url: str, env: dict, log: Path) -> subprocess.Popen:
    """One more `his-pacs-ws deliver` on the test database, beside the server's own."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "his_pacs_ws.cli", "deliver", "--database-url", database_url],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def cli_ok(database_url: str, env: dict, *args: str, stdin: str | None = None) -> str:
    result = run_cli(*args, "--database-url", database_url, env=env, stdin=stdin)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def push_system(database_url: str, env: dict, role: str, url: str, *options: str,
                departments: str | None = None) -> str:
    """A new partner system of ``role`` whose callback is ``url``."""
    name = f"{role.lower()}-push-{uuid.uuid4().hex[:6]}"
    extra = ["--departments", departments] if departments else []
    cli_ok(database_url, env, "systems", "add", name, "--role", role, *extra, "--password-stdin",
           stdin="push-test-password-1\n")
    cli_ok(database_url, env, "systems", "set-callback", name, "--url", url, *options)
    return name


def in_order(entries: list[dict]) -> bool:
    """Per application, Sequences strictly increase in the order they were applied."""
    last: dict[str, int] = {}
    for entry in entries:
        key = entry["application_no"]
        if entry["sequence"] <= last.get(key, 0):
            return False
        last[key] = entry["sequence"]
    return True
