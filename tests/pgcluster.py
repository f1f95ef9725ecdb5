"""A PostgreSQL 15 server of a test's own, from Debian's binaries, on 127.0.0.1 with
password (scram) authentication: for what the suite's embedded server cannot show (wrong
passwords, roles without privileges, a server several nodes share over TCP)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER, PASSWORD = "postgres", "p@ss:w/rd#1"  # needs percent-encoding in a URL, on purpose


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="his-pacs-pg15-"))
        self.data = self.root / "data"
        self.port = _free_port()
        # initdb and postgres refuse to run as root: then they run as pgserver's user
        self.user = "pgserver" if os.geteuid() == 0 else None
        if self.user:
            try:
                pwd.getpwnam(self.user)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", self.user], check=True)
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, self.user)

    def _run(self, *args, **kwargs):
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run([*prefix, *map(str, args)], check=True, capture_output=True, text=True,
                              timeout=120, **kwargs)

    def halt(self) -> None:
        """Stop the server, keeping its data: a primary going away, as in a failover."""
        self._run(BIN / "pg_ctl", "-D", self.data, "-w", "-m", "fast", "stop")

    def resume(self) -> None:
        self._run(BIN / "pg_ctl", "-D", self.data, "-w", "-l", self.root / "log", "start")

    def start(self) -> "Cluster":
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.user:
            shutil.chown(pwfile, self.user)
        self._run(BIN / "initdb", "-D", self.data, "-U", SUPERUSER, "--auth=scram-sha-256",
                  f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C")
        with open(self.data / "postgresql.auto.conf", "a") as conf:  # kept across restarts
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                       "max_connections = 60\nfsync = off\n")
        self.resume()
        return self

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str = PASSWORD) -> str:
        return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        return subprocess.run([str(BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER,
                               "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", statement],
                              check=True, capture_output=True, text=True, env=env, timeout=60).stdout

    def stop(self) -> None:
        try:
            self._run(BIN / "pg_ctl", "-D", self.data, "-w", "-m", "fast", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def scratch_dir(prefix: str = "his-pacs-scratch-") -> Path:
    """A directory for an embedded data dir, outside pytest's: another pytest session on
    the machine resets /tmp/pytest-of-USER to 0700, and the embedded server runs as another
    user when the tests run as root."""
    return Path(tempfile.mkdtemp(prefix=prefix))
