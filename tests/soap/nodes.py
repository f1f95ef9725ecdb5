"""`his-pacs-ws serve` instances a test starts and stops itself, on a database it names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.pgcluster import wait_for
from tests.soap.conftest import ROOT, free_port


class Node:
    def __init__(self, database_url: str, data_dir: Path, *args: str, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(data_dir) / f"serve-{self.port}.log"
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith("HIS_PACS_")}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "his_pacs_ws.cli", "serve", "--database-url", database_url,
                 "--port", str(self.port), "--workers", "1", *args],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**base, "HIS_PACS_DATA_DIR": str(data_dir), **(env or {})})

    def wait_ready(self, timeout: float = 90) -> "Node":
        def up():
            assert self.process.poll() is None, self.log()
            try:
                return requests.get(self.url + "/health", timeout=1).ok
            except requests.RequestException:
                return False
        wait_for(up, timeout, f"serve on port {self.port}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode
