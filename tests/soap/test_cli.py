"""The command line on the embedded PostgreSQL: serve, and other commands beside it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from tests.soap.conftest import ROOT, free_port


GET_UNKNOWN = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v="urn:his-pacs-ws:v1">'
               b"<s:Body><v:GetApplication><v:request><v:ApplicationNo>NOPE</v:ApplicationNo></v:request>"
               b"</v:GetApplication></s:Body></s:Envelope>")


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "his_pacs_ws.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, **kwargs)


def test_serve_on_embedded_postgres_while_migrate_runs_beside_it(tmp_path):
    data_dir = tmp_path / "var"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "his_pacs_ws.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
         "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "serve did not come up:\n" + (
                server.stdout.read().decode() if server.poll() is not None else "")
            time.sleep(0.3)
        migrated = cli("migrate", "--data-dir", str(data_dir))
        assert migrated.returncode == 0, migrated.stderr
        assert "schema at revision" in migrated.stderr
        # the server and its database are still there after the other command has gone: an
        # unknown caller is looked up in the database (Server.Unavailable if it were gone)
        answer = requests.post(f"http://127.0.0.1:{port}/ws/his", timeout=10, data=GET_UNKNOWN,
                               headers={"Content-Type": "text/xml; charset=utf-8"})
        assert b"Client.AuthenticationFailed" in answer.content
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert (data_dir / "pgdata" / "PG_VERSION").exists()


def test_bad_setting_is_refused_by_name():
    result = cli("migrate", env={"HIS_PACS_CHARGE_POINT": "SOMETIMES", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "HIS_PACS_CHARGE_POINT" in result.stderr


def test_wsdl_command_writes_both_snapshots(tmp_path):
    result = cli("wsdl", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "his.wsdl").read_bytes().startswith(b"<?xml")
    assert b"PacsService" in (tmp_path / "pacs.wsdl").read_bytes()


def test_critical_values_audit_table(database_url, his, pacs):
    """The quality office's monthly audit: every step's time and person, overdue marked."""
    from datetime import datetime, timedelta, timezone
    from decimal import Decimal

    from tests.soap.conftest import NURSE, T0, application_request, unique

    ward = unique("W")
    request = application_request(Visit={"VisitNo": unique("V"), "PatientType": "OUTPATIENT", "WardCode": ward})
    his.SubmitApplication(request=request)
    his.ConfirmPayment(request={"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                                "Amount": Decimal("150.00"), "PaidAt": T0})
    radiologist = {"Code": "RAD01", "Name": "赵医生"}
    reported = datetime.now(timezone.utc) - timedelta(minutes=40)
    late, waiting = unique("CV"), unique("CV")
    for number in (late, waiting):
        pacs.RaiseCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": number,
                                         "ApplicationNo": request["ApplicationNo"], "Finding": "张力性气胸",
                                         "ReportedBy": radiologist, "ReportedAt": reported})
    his.AcknowledgeCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": late, "ReceivedBy": NURSE,
                                          "ReceivedAt": reported + timedelta(minutes=12), "ReadBackConfirmed": True})
    result = cli("critical-values", "--database-url", database_url, "--department", ward,
                 "--since", (reported - timedelta(days=1)).date().isoformat())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["No", "Status", "Overdue"]
    row = next(line for line in lines if line.startswith(late))
    assert "RECEIVED" in row and "yes" in row and "李护士" in row and "12.0" in row and "赵医生" in row
    assert "2 critical values, 2 overdue" in result.stdout
    only_waiting = cli("critical-values", "--database-url", database_url, "--department", ward,
                       "--status", "RAISED", "--overdue")
    assert waiting in only_waiting.stdout and late not in only_waiting.stdout
    spreadsheet = cli("critical-values", "--database-url", database_url, "--department", ward, "--format", "csv")
    assert spreadsheet.returncode == 0, spreadsheet.stderr
    import csv

    assert spreadsheet.stdout.startswith("\ufeff")  # Excel reads it as UTF-8
    records = {r["CriticalValueNo"]: r for r in csv.DictReader(spreadsheet.stdout.lstrip("\ufeff").splitlines())}
    assert set(records) == {late, waiting}
    assert records[late]["Status"] == "RECEIVED" and records[late]["Overdue"] == "yes"
    assert records[late]["ReceivedBy"] == "李护士" and records[late]["MinutesToReceive"] == "12.0"
    received = datetime.fromisoformat(records[late]["ReceivedAt"])
    assert received.utcoffset() == timedelta(hours=8) and received == reported.replace(microsecond=0) + timedelta(minutes=12)
    assert records[waiting]["ReceivedAt"] == "" and records[waiting]["Finding"] == "张力性气胸"
    bad = cli("critical-values", "--database-url", database_url, "--since", "last tuesday")
    assert bad.returncode == 2 and "not a date" in bad.stderr


def test_messages_search_show_and_prune(server, database_url, his):
    """When two vendors disagree: find the exchange by application number, read it, and
    later drop old bodies while keeping the record."""
    from decimal import Decimal

    from tests.soap.conftest import T0, application_request, run_cli, unique

    request = application_request()
    his.SubmitApplication(request=request)
    no = request["ApplicationNo"]

    def admin(*args):
        result = run_cli(*args, "--database-url", database_url, env=server.env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    found = admin("messages", "search", "--application-no", no)
    [row] = [line for line in found.splitlines() if no in line]
    assert "SubmitApplication" in row and "his-test" in row and "OK" in row
    record_id = row.split()[0]
    shown = admin("messages", "show", record_id)
    assert f"<v1:ApplicationNo>{no}</v1:ApplicationNo>" in shown or no in shown.split("--- response ---")[0]
    assert "--- response ---" in shown and "SubmitApplicationResponse" in shown
    assert "小明" in shown  # the exchange as it was: the operator reads the patient's request
    # by patient: also the calls that named only the application
    pay = {"MessageId": unique("M"), "ApplicationNo": no, "Amount": Decimal("150.00"), "PaidAt": T0}
    his.ConfirmPayment(request=pay)
    by_patient = admin("messages", "search", "--patient-id", request["Patient"]["PatientId"])
    assert "ConfirmPayment" in by_patient and "SubmitApplication" in by_patient
    by_message = admin("messages", "search", "--message-id", request["MessageId"])
    assert record_id in by_message
    from zeep.exceptions import Fault

    missing = f"NOPE-{no}"
    with pytest.raises(Fault):
        his.GetApplication(request={"ApplicationNo": missing})
    faults = admin("messages", "search", "--fault", "--limit", "5").split("\n\n")[0].splitlines()[2:]
    assert any(missing in row and "ApplicationNotFound" in row for row in faults)
    assert all(" OK " not in f" {row} " for row in faults)
    assert "dropped the bodies" in admin("messages", "prune", "--older-than", "0")
    assert "(pruned)" in admin("messages", "show", record_id)
    assert record_id in admin("messages", "search", "--application-no", no)  # the record stays
