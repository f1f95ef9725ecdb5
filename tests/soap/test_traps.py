"""What hurt a new operator, each shown as the clear behaviour it is now: the working
directory, a killed server, database mistakes, bad serve arguments, read-only commands."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from his_pacs_ws.db import migrate
from his_pacs_ws.db.engine import make_engine
from tests.pgcluster import Cluster, scratch_dir, wait_for
from tests.soap.conftest import ROOT, client, free_port


def cli(*args, cwd=ROOT, env=None, stdin=None, timeout=120):
    """The command as an operator runs it; no HIS_PACS_* from the test run leaks in."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HIS_PACS_")}
    return subprocess.run([sys.executable, "-m", "his_pacs_ws.cli", *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=timeout,
                          env={**base, "PYTHONPATH": str(ROOT), **(env or {})})


def one_line(result) -> str:
    """The command failed with one line of explanation, no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- the working directory ----------------------------------------------------------------

def test_admin_command_elsewhere_never_makes_a_new_key_that_locks_partners_out(server, database_url, tmp_path):
    """`systems add` in another directory used to create ./var/secret.key there and seal the
    new partner with it: the server then failed that partner with InvalidTag."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = cli("systems", "add", "his-elsewhere", "--role", "HIS", "--password-stdin",
                  "--database-url", database_url, cwd=elsewhere, stdin="his-elsewhere-pass\n")
    message = refused.stderr
    assert refused.returncode == 2, message
    assert f"{elsewhere.resolve()}/var/secret.key does not exist" in message
    assert "the database holds the passwords of" in message and "--data-dir" in message
    assert not (elsewhere / "var").exists()
    # a key that is not the servers' is refused too, before anything is sealed with it
    (elsewhere / "var").mkdir()
    (elsewhere / "var" / "secret.key").write_text("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n")
    wrong = cli("systems", "add", "his-elsewhere", "--role", "HIS", "--password-stdin",
                "--database-url", database_url, cwd=elsewhere, stdin="his-elsewhere-pass\n")
    assert wrong.returncode == 2 and "cannot open the passwords of" in wrong.stderr
    listed = cli("systems", "list", "--database-url", database_url, cwd=elsewhere)
    assert listed.returncode == 0 and "his-elsewhere" not in listed.stdout
    # with the servers' key (their data dir) the same command works, and says which key it used
    added = cli("systems", "add", "his-elsewhere", "--role", "HIS", "--password-stdin",
                "--database-url", database_url, "--data-dir", server.env["HIS_PACS_DATA_DIR"],
                cwd=elsewhere, stdin="his-elsewhere-pass\n")
    assert added.returncode == 0, added.stderr
    assert f"secret key {Path(server.env['HIS_PACS_DATA_DIR']).resolve()}/secret.key" in added.stderr
    assert client(server.url, "his", "his-elsewhere", "his-elsewhere-pass").Ping(request={}) is not None


def test_admin_command_elsewhere_never_creates_an_empty_embedded_database(tmp_path):
    """`systems list` in another directory used to initdb ./var and print an empty table."""
    result = cli("systems", "list", cwd=tmp_path)
    message = one_line(result)
    assert f"no database in {tmp_path.resolve()}/var" in message and "never create one" in message
    assert not (tmp_path / "var").exists()


def _serve(data_dir: Path, port: int, log_path: Path, *extra: str, env=None) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "his_pacs_ws.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
             "--workers", "1", *extra], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("HIS_PACS_")}, **(env or {})})


def _wait_healthy(process: subprocess.Popen, url: str, log_path: Path) -> None:
    def up():
        assert process.poll() is None, log_path.read_text()
        try:
            return requests.get(url + "/health", timeout=1).ok
        except requests.RequestException:
            return False
    wait_for(up, 90, "serve to answer /health")


def _postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (ProcessLookupError, ValueError):
        return False
    return True


def test_embedded_database_stops_after_serve_was_killed(tmp_path):
    """After kill -9 of serve, its dead pid kept the embedded PostgreSQL up for good. Now the
    next command on the data dir forgets the dead user and stops the server when it exits;
    and a command run elsewhere names the running data dir."""
    data_dir, port, log_path = scratch_dir() / "var", free_port(), tmp_path / "serve.log"
    process = _serve(data_dir, port, log_path)
    try:
        _wait_healthy(process, f"http://127.0.0.1:{port}", log_path)
        elsewhere = cli("systems", "list", cwd=tmp_path / "..")
        assert f"{data_dir.resolve()} (postgres pid" in one_line(elsewhere)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    time.sleep(1)  # gunicorn's worker notices its master is gone
    assert _postmaster_running(data_dir), "the trap: PostgreSQL outlives a killed serve"
    listed = cli("systems", "list", "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    assert "had died without stopping it" in listed.stderr
    wait_for(lambda: not _postmaster_running(data_dir), 30, "the embedded PostgreSQL to stop")
    shutil.rmtree(data_dir.parent, ignore_errors=True)


# -- database mistakes ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg15():
    cluster = Cluster().start()
    cluster.sql("CREATE ROLE owner LOGIN PASSWORD 'owner-password'")
    cluster.sql("CREATE DATABASE hisdb OWNER owner")
    cluster.sql("CREATE ROLE stranger LOGIN PASSWORD 'stranger-password'")
    yield cluster
    cluster.stop()


def test_database_mistakes_are_one_line_each(pg15):
    port = pg15.port
    cases = {
        "wrong password": (pg15.url("hisdb", "owner", "not-the-password"),
                           'password authentication failed for user "owner"'),
        "refused port": (f"postgresql://owner:x@127.0.0.1:{free_port()}/hisdb", "Connection refused"),
        "missing database": (pg15.url("nodb", "owner", "owner-password"), 'database "nodb" does not exist'),
        "no privilege on schema public": (pg15.url("hisdb", "stranger", "stranger-password"),
                                          "permission denied for schema public"),
        "password not percent-encoded": (f"postgresql://owner:own@r#1@127.0.0.1:{port}/hisdb",
                                         "must be percent-encoded"),
        "a mysql URL": ("mysql://owner:x@127.0.0.1/hisdb", "runs on PostgreSQL"),
    }
    for case, (url, expected) in cases.items():
        message = one_line(cli("migrate", "--database-url", url))
        assert expected in message, (case, message)
        assert "not-the-password" not in message and "owner-password" not in message, case
    # the right credentials, and the encoded superuser password, work
    assert cli("migrate", "--database-url", pg15.url("hisdb", "owner", "owner-password")).returncode == 0


def test_read_only_commands_never_migrate_a_schema(pg15):
    """A newer binary's `messages search` used to upgrade a production schema silently."""
    pg15.sql("CREATE DATABASE oldschema OWNER owner")
    url = pg15.url("oldschema", "owner", "owner-password")
    engine = make_engine(url, pool_size=1)
    try:
        migrate.upgrade(engine, "0003")
        for command in (["messages", "search"], ["systems", "list"], ["critical-values"]):
            message = one_line(cli(*command, "--database-url", url))
            assert "is at 0003" in message and "his-pacs-ws migrate" in message, message
        assert migrate.current_revision(engine) == "0003"
        # an older his-pacs-ws on a newer schema says so, and does not touch it either
        pg15.sql("UPDATE alembic_version SET version_num = '0099_future'", database="oldschema")
        newer = one_line(cli("systems", "list", "--database-url", url))
        assert "(0099_future) is newer than this his-pacs-ws" in newer
        pg15.sql("CREATE DATABASE empty OWNER owner")
        empty = one_line(cli("messages", "search", "--database-url", pg15.url("empty", "owner", "owner-password")))
        assert "no his-pacs-ws schema yet" in empty
    finally:
        engine.dispose()


# -- serve ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    (["--port", "99999"], "--port: 99999 is not between 1 and 65535"),
    (["--port", "http"], "--port: 'http' is not a whole number"),
    (["--workers", "-1"], "--workers: -1 is not between 1 and 64"),
])
def test_serve_arguments_are_checked(args, expected, tmp_path):
    result = cli("serve", "--data-dir", str(tmp_path / "var"), *args)
    assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()


def test_serve_says_at_once_when_the_port_is_taken(database_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = cli("serve", "--database-url", database_url, "--port", str(port), "--workers", "1",
                     env={"HIS_PACS_DATA_DIR": str(tmp_path)}, timeout=60)
        elapsed = time.monotonic() - started
    message = one_line(result)
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in message
    assert elapsed < 20, "gunicorn's five retries"


def test_head_on_health_is_quiet(server):
    before = server.log_path.read_text()
    for _ in range(3):
        answer = requests.head(server.url + "/health", timeout=5)
        assert answer.status_code == 200 and answer.content == b""
    time.sleep(0.5)
    added = server.log_path.read_text()[len(before):]
    assert "WARNING" not in added and "Error" not in added, added
    assert "HEAD /health 200" in added  # the access line is all there is


def test_health_names_version_and_schema_and_separates_liveness(server):
    from his_pacs_ws import __version__

    ready = requests.get(server.url + "/health", timeout=5)
    assert ready.status_code == 200
    assert ready.text.splitlines() == ["ok", f"version {__version__}", f"schema {migrate.head()}"]
    assert requests.get(server.url + "/health/ready", timeout=5).text == ready.text
    live = requests.get(server.url + "/health/live", timeout=5)
    assert live.status_code == 200 and live.text.startswith("alive\n")


def test_start_up_says_the_settings_in_effect_and_nothing_else(server):
    log = server.log_path.read_text()
    [line] = [line for line in log.splitlines() if " serving http://127.0.0.1:" in line]
    for expected in ("auth on (key ", "time zone Asia/Shanghai", "charge point NURSE_SEND (MR=PACS_REGISTER)",
                     "critical-value deadline 2 min", f"schema {migrate.head()}", "with 2 workers"):
        assert expected in line, (expected, line)
    assert "password" not in line.lower()
    start_up = log.split(" serving http://")[0]
    assert "alembic" not in start_up and "Context impl" not in start_up and "setuptools" not in start_up
    assert "+08:00" in line.split()[0]  # log times carry the hospital zone's offset


def test_an_embedded_database_that_cannot_start_is_one_line(tmp_path):
    """pgserver prints pages of initdb/pg_ctl output and a traceback; the operator gets why."""
    home = scratch_dir()
    try:
        (home / "var" / "pgdata").mkdir(parents=True)
        (home / "var" / "pgdata" / "PG_VERSION").write_text("16\n")  # a data dir someone emptied
        message = one_line(cli("migrate", "--data-dir", str(home / "var")))
        assert f"the embedded PostgreSQL in {home / 'var' / 'pgdata'} could not start" in message
        assert "postgresql.conf" in message
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_a_deliverer_in_the_wrong_directory_does_not_make_an_empty_database(tmp_path):
    message = one_line(cli("deliver", cwd=tmp_path, timeout=60))
    assert f"no database in {tmp_path.resolve()}/var" in message
    assert not (tmp_path / "var").exists()
