"""A PostgreSQL 15 server the test owns, so that it can stop, crash, freeze and restart it
(the suite's embedded server is shared and must stay up)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> dict:
    """PostgreSQL refuses to run as root: as root (CI), run it as the embedded server's user."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("pgserver")
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", "pgserver"], check=True, capture_output=True)
        entry = pwd.getpwnam("pgserver")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class Postgres:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="his-pacs-faults-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = _run_as()
        self.process: subprocess.Popen | None = None
        if self.user:
            os.chown(self.root, self.user["user"], self.user["group"])
        subprocess.run([BIN / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True, cwd=self.root, **self.user)
        self.start()
        self.wait_ready()
        subprocess.run([BIN / "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q",
                        "-c", "CREATE DATABASE his_pacs"], check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/his_pacs"

    def start(self) -> None:
        log = open(self.root / "postgres.log", "ab")
        self.process = subprocess.Popen(
            [BIN / "postgres", "-D", self.data, "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={self.root}", "-c", "fsync=off", "-c", "max_connections=60"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root, **self.user)
        log.close()

    def wait_ready(self, timeout: float = 30) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    ready = subprocess.run([BIN / "pg_isready", "-h", "127.0.0.1", "-p", str(self.port)],
                                           capture_output=True)
                    if ready.returncode == 0:
                        return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError("PostgreSQL did not start:\n" + (self.root / "postgres.log").read_text())

    def _tree(self) -> list[psutil.Process]:
        try:
            main = psutil.Process(self.process.pid)
            return [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """A clean fast shutdown: sessions are ended, new connections refused."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=30)

    def crash(self) -> None:
        """Every server process killed at once: the next start runs crash recovery."""
        self._signal_all(signal.SIGKILL)
        self.process.wait(timeout=30)
        psutil.wait_procs(self._tree(), timeout=10)

    def _signal_all(self, sig: int) -> None:
        for proc in self._tree():  # the postmaster first: it forks no new backend meanwhile
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass

    def freeze(self) -> None:
        """SIGSTOP to every server process: connections stay open and nothing answers."""
        self._signal_all(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)

    def restart(self) -> float:
        self.stop()
        self.start()
        return self.wait_ready()

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)
