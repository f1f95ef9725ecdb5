"""The QA scripts in scripts/, run as hospital QA runs them: subprocesses against a server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.soap.conftest import (
    HIS_PASSWORD,
    HIS_USER,
    PACS_PASSWORD,
    PACS_USER,
    ROOT,
    free_port,
    unique,
)

SCRIPTS = ROOT / "scripts"
# The scripts read the partner systems' credentials from these variables.
CREDENTIALS = {"HIS_PACS_HIS_USER": HIS_USER, "HIS_PACS_HIS_PASSWORD": HIS_PASSWORD,
               "HIS_PACS_PACS_USER": PACS_USER, "HIS_PACS_PACS_PASSWORD": PACS_PASSWORD}


def run(script: str, *args: str, credentials: dict = CREDENTIALS) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in CREDENTIALS}
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args], check=False, capture_output=True, text=True,
        encoding="utf-8", timeout=300, cwd=ROOT, env={**env, **credentials, "PYTHONIOENCODING": "utf-8"})


def test_scenarios_pass(base_url):
    result = run("scenarios.py", "--url", base_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "14 scenarios passed" in result.stdout
    for words in ("cannot find him", "ApplicationNotFound", "ApplicationLocked", "MessageIdReused",
                  "PACS_REGISTER", "留置针", "VERIFIED / 已完成, version 2", "version 3", "取消审核",
                  "shows the earlier report", "read-back is required", "the loop is closed", "Overdue=true",
                  "REVOKED", "ALL_VISITS", "1 ignored", "PatientNotFound",
                  "wrong password, as a digest and as text: AuthenticationFailed",
                  "the HIS credentials on PacsService: AccessDenied", "as PasswordText and as PasswordDigest",
                  "is accepted once", "the same token sent again, as a replay would: AuthenticationFailed"):
        assert words in result.stdout


def test_scenarios_with_text_tokens(base_url):
    result = run("scenarios.py", "--url", base_url, "--password-type", "text")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "14 scenarios passed" in result.stdout


def test_scenarios_report_a_deployment_that_behaves_differently(base_url):
    # CT charges when the nurse sends: it is not a PACS_REGISTER department, so case e fails.
    result = run("scenarios.py", "--url", base_url, "--register-department", "CT")
    assert result.returncode == 1
    assert "FAILED" in result.stdout
    assert "HIS_PACS_CHARGE_POINT_BY_DEPARTMENT=CT=PACS_REGISTER" in result.stdout
    assert "13 of 17 scenarios passed; FAILED: e; skipped: o, p, q" in result.stdout


def test_the_push_scenarios_pass_with_the_callbacks_set(server, database_url):
    from tests.soap.push import cli_ok

    his_port, pacs_port = free_port(), free_port()
    for system, port in ((HIS_USER, his_port), (PACS_USER, pacs_port)):
        cli_ok(database_url, server.env, "systems", "set-callback", system, "--url", f"http://127.0.0.1:{port}/")
    try:
        result = run("scenarios.py", "--url", server.url, "--push", f"{his_port},{pacs_port}", "--push-host",
                     "127.0.0.1")
    finally:
        for system in (HIS_USER, PACS_USER):
            cli_ok(database_url, server.env, "systems", "callback-off", system)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "17 scenarios passed" in result.stdout
    for words in ("PACS is told at once (ApplicationReleased", "REGISTERED / 执行中, Locked",
                  "reach the inpatient account", "reaches the HIS by itself", "PACS sees the loop closed",
                  "escalated to the HIS: CriticalValueOverdue"):
        assert words in result.stdout


@pytest.mark.parametrize("script, variables", [
    ("scenarios.py", ("HIS_PACS_HIS_USER", "HIS_PACS_HIS_PASSWORD", "HIS_PACS_PACS_USER", "HIS_PACS_PACS_PASSWORD")),
    ("simulate_his.py", ("HIS_PACS_HIS_USER", "HIS_PACS_HIS_PASSWORD")),
    ("simulate_pacs.py", ("HIS_PACS_PACS_USER", "HIS_PACS_PACS_PASSWORD")),
])
def test_the_scripts_refuse_to_run_without_credentials(base_url, script, variables):
    command = [script, "--url", base_url] + ([] if script == "scenarios.py" else ["ping"])
    result = run(*command, credentials={})
    assert result.returncode == 2
    assert result.stdout == "" and "FAULT" not in result.stderr  # nothing was sent
    assert "credentials needed" in result.stderr and "--no-auth" in result.stderr
    assert all(variable in result.stderr for variable in variables)
    # A user without a password is no better.
    user_only = run(*command, credentials={variables[0]: "qa"})
    assert user_only.returncode == 2 and "credentials needed" in user_only.stderr


@pytest.mark.parametrize("password_type", ["digest", "text"])
def test_a_wrong_password_is_refused(base_url, password_type):
    for script in ("simulate_his.py", "simulate_pacs.py"):
        result = run(script, "--url", base_url, "--password", "not-the-password", "--password-type", password_type,
                     "ping")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "FAULT AuthenticationFailed" in result.stderr
        right = run(script, "--url", base_url, "--password-type", password_type, "ping")
        assert right.returncode == 0 and "ServiceVersion:" in right.stdout, right.stderr


def test_his_credentials_are_denied_on_pacs_service(base_url):
    result = run("simulate_pacs.py", "--url", base_url, "--user", HIS_USER, "--password", HIS_PASSWORD, "ping")
    assert result.returncode == 1 and "FAULT AccessDenied" in result.stderr


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


def examined(base_url: str, patient_id: str) -> str:
    """An outpatient's 头颅CT, paid and scanned, through the simulators: its ApplicationNo."""
    application_no = unique("QA")
    assert run("simulate_his.py", "--url", base_url, "submit", "--application-no", application_no,
               "--patient-id", patient_id).returncode == 0
    assert run("simulate_his.py", "--url", base_url, "pay", application_no, "--amount", "150.00").returncode == 0
    assert run("simulate_pacs.py", "--url", base_url, "status", application_no, "EXAMINED").returncode == 0
    return application_no


def test_pacs_reports_and_his_reads_the_report(base_url):
    patient_id = unique("P")
    application_no = examined(base_url, patient_id)
    his = ["simulate_his.py", "--url", base_url]
    report = ["simulate_pacs.py", "--url", base_url, "report", application_no]
    report_no = unique("RPT")
    preliminary = run(*report, "PRELIMINARY", "--report-no", report_no)
    assert preliminary.returncode == 0, preliminary.stderr
    assert "Status: REPORTED" in preliminary.stdout and "ReportVersion: 1" in preliminary.stdout
    assert run(*his, "reports", application_no).stdout.strip() == "(none)"
    final = run(*report, "FINAL", "--positive", "--report-no", report_no, "--impression", "腔隙性脑梗死",
                "--image-url", "http://pacs.example/wado?1", "--image-url", "http://pacs.example/wado?2")
    assert final.returncode == 0, final.stderr
    assert "已完成" in final.stdout and "ReportVersion: 2" in final.stdout
    reports = run(*his, "reports", "--patient-id", patient_id)
    assert reports.returncode == 0, reports.stderr
    for words in ("ResultStatus: FINAL", "Version: 2", "腔隙性脑梗死", "放射科主任", "- http://pacs.example/wado?2"):
        assert words in reports.stdout
    again = run(*report, "FINAL", "--no-positive", "--report-no", report_no)
    assert again.returncode == 1 and "FAULT InvalidTransition" in again.stderr


def test_reports_takes_the_application_no_like_get_or_a_patient_id(base_url):
    patient_id = unique("P")
    application_no = examined(base_url, patient_id)
    assert run("simulate_pacs.py", "--url", base_url, "report", application_no, "FINAL", "--no-positive").returncode == 0
    reports = ["simulate_his.py", "--url", base_url, "reports"]
    by_application, by_patient = run(*reports, application_no), run(*reports, "--patient-id", patient_id)
    assert by_application.returncode == by_patient.returncode == 0, by_application.stderr + by_patient.stderr
    assert f"ApplicationNo: {application_no}" in by_application.stdout
    assert by_application.stdout == by_patient.stdout
    for wrong in ([], [application_no, "--patient-id", patient_id]):
        refused = run(*reports, *wrong)
        assert refused.returncode == 2 and "APPLICATION_NO or --patient-id" in refused.stderr


def test_pacs_raises_a_critical_value_and_his_closes_the_loop(base_url):
    application_no = examined(base_url, unique("P"))
    number = unique("CV")
    raised = run("simulate_pacs.py", "--url", base_url, "critical", application_no, "--finding", "左侧大量气胸",
                 "--critical-value-no", number)
    assert raised.returncode == 0, raised.stderr
    assert "Status: RAISED" in raised.stdout and "AckDeadline:" in raised.stdout and "放射科主任" in raised.stdout
    his = ["simulate_his.py", "--url", base_url]
    refused = run(*his, "ack-critical", number, "--no-read-back")
    assert refused.returncode == 1 and "FAULT InvalidTransition" in refused.stderr
    received = run(*his, "ack-critical", number)
    assert received.returncode == 0 and "Status: RECEIVED" in received.stdout and "MinutesToReceive:" in received.stdout
    handled = run(*his, "handle-critical", number, "--opinion", "已请胸外科会诊")
    assert handled.returncode == 0 and "Status: HANDLED" in handled.stdout
    seen = run("simulate_pacs.py", "--url", base_url, "critical-values", "--application-no", application_no)
    assert seen.returncode == 0, seen.stderr
    for words in (number, "Status: HANDLED", "ReadBackConfirmed: true", "李护士", "王医生", "已请胸外科会诊"):
        assert words in seen.stdout
    overdue = run(*his, "critical-values", "--application-no", application_no, "--overdue-only")
    assert overdue.returncode == 0 and overdue.stdout.strip() == "(none)"
    revoked = run("simulate_pacs.py", "--url", base_url, "revoke-critical", number)
    assert revoked.returncode == 1 and "FAULT InvalidTransition" in revoked.stderr


def test_his_publishes_emr_and_pacs_reads_it(base_url):
    patient_id, visit_no = unique("P"), unique("V")
    publish = ["simulate_his.py", "--url", base_url, "publish-emr", patient_id, "--visit-no", visit_no,
               "--patient-type", "INPATIENT", "--visit-at", "2026-11-20T08:00:00+08:00"]
    published = run(*publish, "--document", "入院记录:入院记录:突发头痛2小时入院",
                    "--document", "病程记录:首次病程记录:考虑蛛网膜下腔出血", "--order", "头颅CT平扫")
    assert published.returncode == 0, published.stderr
    assert "DocumentsStored: 2" in published.stdout and "OrdersStored: 1" in published.stdout
    read = run("simulate_pacs.py", "--url", base_url, "emr", patient_id, "--include-orders")
    assert read.returncode == 0, read.stderr
    for words in (visit_no, "PatientType: INPATIENT", "突发头痛2小时入院", "首次病程记录", "头颅CT平扫"):
        assert words in read.stdout
    revised = run(*publish, "--version", "2", "--document", "入院记录:入院记录:突发剧烈头痛2小时入院")
    assert "DocumentsStored: 1" in revised.stdout
    read = run("simulate_pacs.py", "--url", base_url, "emr", patient_id, "--document-type", "入院记录")
    assert "突发剧烈头痛2小时入院" in read.stdout and "Version: 2" in read.stdout and "首次病程记录" not in read.stdout
    unknown = run("simulate_pacs.py", "--url", base_url, "emr", unique("P"))
    assert unknown.returncode == 1 and "FAULT PatientNotFound" in unknown.stderr


def test_an_unreachable_deployment_is_an_error():
    result = run("simulate_pacs.py", "--url", f"http://127.0.0.1:{free_port()}", "ping")
    assert result.returncode == 2 and "ERROR" in result.stderr


def test_wrong_credentials_are_said_once_up_front_with_what_to_check(base_url):
    wrong = {**CREDENTIALS, "HIS_PACS_HIS_PASSWORD": "not-the-password"}
    result = run("scenarios.py", "--url", base_url, credentials=wrong)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "a. " not in result.stdout  # no case was played
    assert f"HIS system {HIS_USER}: AuthenticationFailed" in result.stderr
    assert "systems list" in result.stderr and result.stderr.count("AuthenticationFailed") == 1
    bench = run("bench.py", "--url", base_url, "--rounds", "1", credentials=wrong)
    assert bench.returncode == 2 and "HIS credentials: AuthenticationFailed" in bench.stderr
    single = run("simulate_his.py", "--url", base_url, "ping", credentials=wrong)
    assert single.returncode == 1 and "systems list" in single.stderr


def test_the_retry_hint_is_the_command_that_repeats_the_request(base_url):
    application_no = unique("QA")
    assert run("simulate_his.py", "--url", base_url, "submit", "--application-no", application_no).returncode == 0
    first = run("simulate_his.py", "--url", base_url, "--password", HIS_PASSWORD, "pay", application_no,
                "--amount", "150.00")
    assert first.returncode == 0, first.stderr
    [hint] = [line for line in first.stdout.splitlines() if line.startswith("(to retry the same request: ")]
    command = hint.removeprefix("(to retry the same request: ").removesuffix(")")
    assert HIS_PASSWORD not in command  # the variables give it, never the hint
    import shlex

    words = shlex.split(command)
    assert words[0] == "simulate_his.py" and "--paid-at" in words and "--message-id" in words
    again = run(*words)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split("\n", 2)[2] == first.stdout.split("\n", 2)[2]  # the same answer: a replay


def test_a_closed_pipe_ends_quietly(base_url):
    """`simulate_pacs.py worklist | head -1`: the reader is gone before the script writes."""
    env = {key: value for key, value in os.environ.items() if key not in CREDENTIALS}
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        writer = subprocess.run([sys.executable, str(SCRIPTS / "simulate_pacs.py"), "--url", base_url, "worklist"],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, cwd=ROOT,
                                env={**env, **CREDENTIALS})
    finally:
        os.close(write_end)
    assert "Traceback" not in writer.stderr and "BrokenPipe" not in writer.stderr, writer.stderr
    assert writer.returncode == 0


def test_charges_takes_the_application_no_like_get_and_reports(base_url):
    application_no = unique("QA")
    assert run("simulate_his.py", "--url", base_url, "submit", "--application-no", application_no).returncode == 0
    assert run("simulate_his.py", "--url", base_url, "pay", application_no, "--amount", "150.00").returncode == 0
    positional = run("simulate_his.py", "--url", base_url, "charges", application_no)
    assert positional.returncode == 0, positional.stderr
    assert "150.00" in positional.stdout and "PAYMENT" in positional.stdout
    spelled = run("simulate_his.py", "--url", base_url, "charges", "--application-no", application_no)
    assert spelled.stdout == positional.stdout
    neither = run("simulate_his.py", "--url", base_url, "charges")
    assert neither.returncode == 2 and "give APPLICATION_NO or --patient-id" in neither.stderr


@pytest.mark.parametrize("scenario, operations", [
    ("submit", {"SubmitApplication"}),
    ("day", {"SubmitApplication", "QueryApplications", "ReportStatus", "PushReport", "QueryReports"}),
])
def test_the_load_generator_plays_its_scenarios_without_a_failure(base_url, tmp_path, scenario, operations):
    """scripts/loadgen.py, briefly: every call of a scenario answers without a fault, and
    the JSON result says so (the benchmark's figures come from this script)."""
    out = tmp_path / f"{scenario}.json"
    result = run("loadgen.py", "--url", base_url, "--scenario", scenario, "--processes", "2",
                 "--connections", "2", "--seconds", "1", "--max-journeys", "6", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    summary = json.loads(out.read_text(encoding="utf-8"))
    assert summary["failed"] == 0 and summary["calls"] >= 6
    assert operations <= set(summary["operations"])
