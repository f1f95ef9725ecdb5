"""View mode beside the running server: the inbox processor `serve` starts, a PACS that writes
rows instead of calling, and the embedded PostgreSQL listening on TCP when asked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from tests.soap.conftest import CLERK, ROOT, T0, free_port, run_cli, unique
from tests.soap.test_workflows import entries, report, send, submit

PASSWORD = "view-partner-password-1"


def conninfo(database_url: str, name: str, password: str = PASSWORD) -> str:
    url = make_url(database_url).set(drivername="postgresql", username=name, password=password)
    return url.render_as_string(hide_password=False)


def wait_processed(conn, pk: int, seconds: float = 20) -> dict:
    """The row once the processor has answered it (the test does not process it itself)."""
    deadline = time.monotonic() + seconds
    while True:
        cursor = conn.execute("SELECT * FROM exchange.pacs_inbox WHERE id = %s", (pk,))
        row = dict(zip([c.name for c in cursor.description], cursor.fetchone()))
        if row["state"] != "PENDING":
            return row
        assert time.monotonic() < deadline, "the inbox row was not processed"
        time.sleep(0.1)


@pytest.fixture
def view_partner(server, database_url):
    name = f"view_{uuid.uuid4().hex[:10]}"
    granted = run_cli("views", "grant", name, "--role", "PACS", "--password-stdin", "--database-url", database_url,
                      env=server.env, stdin=PASSWORD + "\n")
    assert granted.returncode == 0, granted.stderr
    yield name
    revoked = run_cli("views", "revoke", name, "--database-url", database_url, env=server.env)
    assert revoked.returncode == 0, revoked.stderr


def state(his, no) -> dict:
    got = his.GetApplication(request={"ApplicationNo": no})
    app = got.Application
    return {
        "status": (app.Status, app.HisStatus, app.Locked),
        "timeline": [(e.Event, e.Status, e.Source, e.Applied, e.Operator.Code if e.Operator else None,
                      e.OccurredAt) for e in entries(got.Timeline, "StatusEvent")],
        "charges": [(c.ItemCode, c.Quantity, c.Amount, c.Trigger, c.RefundedAmount)
                    for c in entries(got.Charges, "ChargeLine")],
    }


def test_his_sees_the_same_state_whether_pacs_used_soap_or_the_inbox(his, pacs, view_partner, database_url,
                                                                     server):
    # MR charges at registration on the test server: the charge point applies to both paths
    by_soap = submit(his, patient_type="INPATIENT", executing="MR")
    by_inbox = submit(his, patient_type="INPATIENT", executing="MR")
    send(his, by_soap), send(his, by_inbox)

    report(pacs, by_soap, "REGISTERED", minutes=20, AccessionNo="ACC-S")
    with psycopg.connect(conninfo(database_url, view_partner), autocommit=True) as conn:
        pk = conn.execute(
            "INSERT INTO exchange.pacs_inbox (message_id, operation, application_no, status, occurred_at, "
            "operator_code, operator_name, accession_no) VALUES (%s, 'ReportStatus', %s, 'REGISTERED', %s, %s, "
            "%s, 'ACC-I') RETURNING id",
            (unique("M"), by_inbox, T0 + timedelta(minutes=20), CLERK["Code"], CLERK["Name"])).fetchone()[0]
        row = wait_processed(conn, pk)  # by the processor serve started, woken by NOTIFY
        assert (row["state"], row["status_after"]) == ("PROCESSED", "REGISTERED")
        seen = dict(conn.execute("SELECT application_no, his_status FROM exchange.application_status "
                                 "WHERE application_no = ANY(%s)", ([by_soap, by_inbox],)).fetchall())
    assert seen == {by_soap: "执行中", by_inbox: "执行中"}

    soap_state, inbox_state = state(his, by_soap), state(his, by_inbox)
    assert soap_state == inbox_state
    assert soap_state["status"] == ("REGISTERED", "执行中", True)
    assert [c[3] for c in soap_state["charges"]] == ["PACS_REGISTER"]

    # and the message record shows the row like a call
    found = run_cli("messages", "search", "--application-no", by_inbox, "--database-url", database_url,
                    env=server.env)
    assert found.returncode == 0, found.stderr
    assert "PACS_INBOX" in found.stdout and view_partner in found.stdout and "ReportStatus" in found.stdout


def _child_pid(log_text: str) -> int:
    return int(re.search(r"PACS inbox processor started \(pid (\d+)\)", log_text).group(1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_embedded_postgres_listens_on_tcp_for_view_partners_when_asked(tmp_path):
    data_dir, port, pg_port = tmp_path / "var", free_port(), free_port()
    env = {**os.environ, "HIS_PACS_DATA_DIR": str(data_dir), "HIS_PACS_VIEWS_LISTEN": f"127.0.0.1:{pg_port}"}
    env.pop("HIS_PACS_DATABASE_URL", None)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "his_pacs_ws.cli", "serve", "--port", str(port),
                                   "--workers", "1"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    child = None
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        child = _child_pid(log_path.read_text())
        name = f"view_{uuid.uuid4().hex[:10]}"
        granted = run_cli("views", "grant", name, "--role", "PACS", "--departments", "CT", "--password-stdin",
                          env=env, stdin=PASSWORD + "\n")
        assert granted.returncode == 0, granted.stderr

        tcp = f"host=127.0.0.1 port={pg_port} dbname=his_pacs user={name} password={PASSWORD} connect_timeout=5"
        with psycopg.connect(tcp, autocommit=True) as conn:  # as a vendor's JDBC/ODBC driver would
            assert conn.execute("SELECT count(*) FROM exchange.worklist").fetchone() == (0,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM applications")
            pk = conn.execute(
                "INSERT INTO exchange.pacs_inbox (message_id, operation, application_no, status, occurred_at, "
                "operator_code, operator_name) VALUES ('M1', 'ReportStatus', 'A-NONE', 'EXAMINED', now(), 'R1', "
                "'登记员') RETURNING id").fetchone()[0]
            row = wait_processed(conn, pk)
            assert (row["state"], row["fault_code"]) == ("REFUSED", "ApplicationNotFound")
        with pytest.raises(psycopg.OperationalError):  # a wrong password
            psycopg.connect(tcp.replace(PASSWORD, "not-the-password"))
        with pytest.raises(psycopg.OperationalError):  # the superuser has no password: no TCP login
            psycopg.connect(f"host=127.0.0.1 port={pg_port} dbname=his_pacs user=postgres connect_timeout=5")

        listed = run_cli("views", "list", env=env)
        assert listed.returncode == 0 and name in listed.stdout and "CT" in listed.stdout
        assert run_cli("views", "revoke", name, env=env).returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert child is not None
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:  # the processor ends with serve
        time.sleep(0.1)
    assert not _alive(child)
