"""The QA scripts in scripts/, run as hospital QA runs them: subprocesses against a server."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.soap.conftest import ROOT, free_port, unique

SCRIPTS = ROOT / "scripts"


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], check=False, capture_output=True, text=True,
        encoding="utf-8", timeout=300, cwd=ROOT, env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def test_scenarios_pass(base_url):
    result = run("scenarios.py", "--url", base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 scenarios passed" in result.stdout
    for words in ("cannot find him", "ApplicationNotFound", "ApplicationLocked", "MessageIdReused",
                  "PACS_REGISTER", "留置针"):
        assert words in result.stdout


def test_scenarios_report_a_deployment_that_behaves_differently(base_url):
    # CT charges when the nurse sends: it is not a PACS_REGISTER department, so case e fails.
    result = run("scenarios.py", "--url", base_url, "--register-department", "CT")
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert "HIS_PACS_CHARGE_POINT_BY_DEPARTMENT=CT=PACS_REGISTER" in result.stdout
    assert "6 of 7 scenarios passed; FAILED: e" in result.stdout


def test_submit_then_get(base_url):
    application_no = unique("QA")
    submitted = run("simulate_his.py", "--url", base_url, "submit", "--application-no", application_no,
                    "--patient-name", "小明", "--item-name", "头颅CT平扫", "--price", "150.00")
    assert submitted.returncode == 0, submitted.stderr
    assert "MessageId:" in submitted.stdout and "Status: NEW" in submitted.stdout
    assert "待收费" in submitted.stdout
    got = run("simulate_his.py", "--url", base_url, "get", application_no)
    assert got.returncode == 0, got.stderr
    assert "小明" in got.stdout and "头颅CT平扫" in got.stdout and "TotalAmount: 150.00" in got.stdout


def test_a_fault_exits_nonzero_and_prints_its_code(base_url):
    result = run("simulate_his.py", "--url", base_url, "get", unique("MISSING"))
    assert result.returncode == 1
    assert "FAULT ApplicationNotFound" in result.stderr
    assert "Code: ApplicationNotFound" in result.stderr and "Retryable: false" in result.stderr


def test_a_retry_with_the_same_message_id(base_url):
    application_no = unique("QA")
    submitted = run("simulate_his.py", "--url", base_url, "submit", "--application-no", application_no)
    assert submitted.returncode == 0
    message_id = unique("M")
    pay = ["simulate_his.py", "--url", base_url, "pay", application_no, "--amount", "150.00",
           "--message-id", message_id, "--paid-at", "2026-11-26T09:30:00+08:00"]
    first, again = run(*pay), run(*pay)
    assert first.returncode == again.returncode == 0
    assert "Status: RELEASED" in first.stdout
    assert first.stdout == again.stdout
    other = run(*pay[:-1], "2026-11-26T09:31:00+08:00")
    assert other.returncode == 1 and "MessageIdReused" in other.stderr


def test_pacs_finds_registers_and_locks_an_inpatient_order(base_url):
    application_no = unique("QA")
    his = ["simulate_his.py", "--url", base_url]
    pacs = ["simulate_pacs.py", "--url", base_url]
    assert run(*his, "submit", "--patient-type", "INPATIENT", "--patient-name", "小李",
               "--application-no", application_no).returncode == 0
    sent = run(*his, "send", application_no)
    assert sent.returncode == 0 and "Trigger: NURSE_SEND" in sent.stdout
    worklist = run(*pacs, "worklist", "--application-no", application_no)
    assert worklist.returncode == 0
    assert application_no in worklist.stdout and "小李" in worklist.stdout
    assert "1 application(s)" in worklist.stdout
    registered = run(*pacs, "status", application_no, "REGISTERED", "--accession-no", unique("ACC"))
    assert registered.returncode == 0 and "执行中" in registered.stdout and "Locked: true" in registered.stdout
    cancelled = run(*his, "cancel", application_no)
    assert cancelled.returncode == 1 and "ApplicationLocked" in cancelled.stderr


def test_an_unreachable_deployment_is_an_error():
    result = run("simulate_pacs.py", "--url", f"http://127.0.0.1:{free_port()}", "ping")
    assert result.returncode == 2 and "ERROR" in result.stderr
