"""Push mode over HTTP: the server's own deliverer pushes every change to receivers hosted
from the callback WSDLs, in order per application, once in effect, through outages."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from tests.soap.conftest import CLERK, DOCTOR, NURSE, T0, application_request, unique
from tests.soap.push import Receiver, cli_ok, in_order, push_system

RADIOLOGIST = {"Code": "RAD01", "Name": "赵医生"}


@pytest.fixture
def push(server, database_url, tmp_path):
    """Receivers started in the test, callbacks set for new systems; all turned off after."""
    systems, receivers = [], []

    class Push:
        def receiver(self, role: str, *options: str, start: bool = True) -> Receiver:
            receiver = Receiver(role, tmp_path, *options)
            receivers.append(receiver)
            return receiver.start() if start else receiver

        def system(self, role: str, receiver: Receiver, *options: str, departments: str | None = None) -> str:
            name = push_system(database_url, server.env, role, receiver.url, *options, departments=departments)
            systems.append(name)
            return name

        def cli(self, *args: str, stdin: str | None = None) -> str:
            return cli_ok(database_url, server.env, *args, stdin=stdin)

        def wait_cli(self, done, *args: str, timeout: float = 15.0) -> str:
            deadline = time.monotonic() + timeout
            while not done(out := self.cli(*args)):
                assert time.monotonic() < deadline, out
                time.sleep(0.3)
            return out

    yield Push()
    for name in systems:
        cli_ok(database_url, server.env, "systems", "callback-off", name)
    for receiver in receivers:
        receiver.stop()


def department() -> str:
    """An executing department of the test's own: department-bound PACS receivers see only it."""
    return "P" + uuid.uuid4().hex[:6].upper()


def paid_application(his, dept: str) -> str:
    request = application_request(executing=dept)
    his.SubmitApplication(request=request)
    his.ConfirmPayment(request={"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                                "Amount": Decimal("150.00"), "PaidAt": T0})
    return request["ApplicationNo"]


def register(pacs, application_no: str) -> None:
    pacs.ReportStatus(request={"MessageId": unique("M"), "ApplicationNo": application_no, "Status": "REGISTERED",
                               "OccurredAt": T0, "Operator": CLERK, "AccessionNo": unique("ACC")})


def test_the_workflow_reaches_both_sides(his, pacs, push):
    his_receiver, pacs_receiver = push.receiver("his"), push.receiver("pacs")
    dept = department()
    push.system("HIS", his_receiver)
    push.system("PACS", pacs_receiver, departments=dept)

    number = paid_application(his, dept)
    released = pacs_receiver.wait_for(
        lambda es: [e for e in es if e["operation"] == "ApplicationReleased" and e["application_no"] == number])
    detail = released[0]["request"]["Application"]
    assert detail["Patient"]["Name"] == "小明" and detail["Status"] == "RELEASED"
    assert detail["Items"]["ApplicationItem"][0]["UnitPrice"] == "150.00"

    register(pacs, number)
    changed = his_receiver.wait_for(lambda es: [e for e in es if e["application_no"] == number
                                                and e["request"].get("Status") == "REGISTERED"])
    assert changed[0]["request"]["HisStatus"] == "执行中" and changed[0]["request"]["Locked"] is True

    pacs.PushReport(request={
        "MessageId": unique("M"), "ApplicationNo": number, "ReportNo": unique("R"), "ResultStatus": "FINAL",
        "ReportingDoctor": RADIOLOGIST, "ReportedAt": T0, "VerifyingDoctor": RADIOLOGIST, "VerifiedAt": T0,
        "Impression": "未见异常", "Positive": False, "ImageUrls": {"ImageUrl": ["http://pacs.example/wado?1"]}})
    report = his_receiver.wait_for(lambda es: [e for e in es if e["operation"] == "ReportPublished"
                                               and e["application_no"] == number])[0]["request"]["Report"]
    assert report["Impression"] == "未见异常" and report["ImageUrls"]["ImageUrl"] == ["http://pacs.example/wado?1"]

    cv_no = unique("CV")
    raised_at = time.monotonic()
    pacs.RaiseCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": cv_no, "ApplicationNo": number,
                                     "Finding": "左侧大量气胸", "ReportedBy": RADIOLOGIST, "ReportedAt": T0})
    his_receiver.wait_for(lambda es: [e for e in es if e["operation"] == "CriticalValueRaised"
                                      and e["request"]["CriticalValue"]["CriticalValueNo"] == cv_no], timeout=5)
    assert time.monotonic() - raised_at < 5  # within seconds, not a polling interval
    his.AcknowledgeCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": cv_no,
                                          "ReceivedBy": NURSE, "ReceivedAt": T0, "ReadBackConfirmed": True})
    his.RecordCriticalValueHandling(request={"MessageId": unique("M"), "CriticalValueNo": cv_no,
                                             "HandledBy": DOCTOR, "HandledAt": T0, "HandlingOpinion": "已处理"})
    loop = pacs_receiver.wait_for(lambda es: [e for e in es if e["operation"] == "CriticalValueUpdated"
                                              and e["request"]["CriticalValue"]["Status"] == "HANDLED"])
    assert loop[0]["request"]["CriticalValue"]["HandlingOpinion"] == "已处理"

    for receiver in (his_receiver, pacs_receiver):
        entries = receiver.applied(number)
        assert in_order(entries)
        assert len({e["message_id"] for e in entries}) == len(entries)
    his_ops = [e["operation"] for e in his_receiver.applied(number)]
    assert his_ops[:3] == ["ChargesPosted", "ApplicationStatusChanged", "ApplicationStatusChanged"]
    # the PACS's own calls are not pushed back to it; the HIS's own calls are not pushed to the HIS that made them
    assert {e["operation"] for e in pacs_receiver.applied(number)} == {"ApplicationReleased", "CriticalValueUpdated"}


def test_a_pacs_bound_to_departments_hears_only_of_them(his, push):
    receiver = push.receiver("pacs")
    mine, other = department(), department()
    push.system("PACS", receiver, departments=mine)
    theirs = paid_application(his, other)
    ours = paid_application(his, mine)
    receiver.wait_for(lambda es: [e for e in es if e["application_no"] == ours])
    assert not [e for e in receiver.entries() if e["application_no"] == theirs]


def test_a_receiver_down_for_a_while_gets_everything_in_order(his, pacs, push):
    receiver = push.receiver("pacs", start=False)
    dept = department()
    name = push.system("PACS", receiver, departments=dept)
    numbers = [paid_application(his, dept) for _ in range(4)]
    for number in numbers[:2]:
        his.CancelApplication(request={"MessageId": unique("M"), "ApplicationNo": number, "Reason": "患者要求",
                                       "Operator": DOCTOR, "CancelledAt": T0})
    time.sleep(2)  # several attempts fail meanwhile: connection refused
    queue = push.cli("deliveries", "list", "--system", name)
    assert "RETRYING" in queue and "CONNECTION_ERROR" in queue
    receiver.start()
    receiver.wait_for(lambda es: len([e for e in es if e["outcome"] == "applied"]) >= 6, timeout=30)
    applied = receiver.applied()
    assert in_order(applied)
    assert [e["operation"] for e in applied if e["application_no"] == numbers[0]] == [
        "ApplicationReleased", "ApplicationCancelled"]
    assert sorted(e["message_id"] for e in applied) == sorted({e["message_id"] for e in applied})


def test_server_faults_are_retried_with_the_same_message_id(his, push):
    receiver = push.receiver("pacs", "--fail", "3")
    dept = department()
    push.system("PACS", receiver, departments=dept)
    number = paid_application(his, dept)
    receiver.wait_for(lambda es: [e for e in es if e["outcome"] == "applied" and e["application_no"] == number])
    attempts = [e for e in receiver.entries() if e["application_no"] == number]
    assert [e["outcome"] for e in attempts] == ["server-fault"] * 3 + ["applied"]
    assert len({e["message_id"] for e in attempts}) == 1


def test_a_client_fault_fails_the_delivery_until_it_is_retried(his, push):
    receiver = push.receiver("pacs", "--client-fault", "ApplicationReleased")
    dept = department()
    name = push.system("PACS", receiver, departments=dept)
    number = paid_application(his, dept)
    receiver.wait_for(lambda es: [e for e in es if e["outcome"] == "client-fault"])
    time.sleep(1.5)  # never retried by itself
    assert len([e for e in receiver.entries() if e["application_no"] == number]) == 1
    failed = push.cli("deliveries", "list", "--system", name, "--status", "FAILED")
    assert "Client.Refused" in failed and number in failed
    delivery_id = next(line.split()[0] for line in failed.splitlines() if number in line)
    shown = push.cli("deliveries", "show", delivery_id)
    assert "CLIENT_FAULT" in shown and "rehearsal" in shown  # the receiver's own answer is kept

    receiver.stop()
    receiver.start("--fail", "0")  # fixed: it accepts now
    push.cli("deliveries", "retry", delivery_id)
    applied = receiver.wait_for(lambda es: [e for e in es if e["outcome"] == "applied"])
    assert applied[0]["message_id"] == receiver.entries()[0]["message_id"]
    assert "DELIVERED" in push.cli("deliveries", "show", delivery_id)


def test_a_receiver_slower_than_the_timeout_gets_the_same_message_id_again(his, push):
    receiver = push.receiver("pacs", "--slow", "1.5", "--slow-count", "1")
    dept = department()
    name = push.system("PACS", receiver, "--timeout", "0.5", departments=dept)
    number = paid_application(his, dept)
    seen = receiver.wait_for(lambda es: [e for e in es if e["application_no"] == number][1:] and
                             [e for e in es if e["application_no"] == number], timeout=20)
    assert len({e["message_id"] for e in seen}) == 1  # the retry is the same notification
    # applied once: whichever copy the receiver finished first, the other is dropped as a repeat
    assert sorted(e["outcome"] for e in seen[:2]) == ["applied", "duplicate"]
    shown = push.cli("deliveries", "list", "--system", name)
    assert "TIMEOUT" in shown or "DELIVERED" in shown


def test_outbound_exchanges_are_in_the_message_record(his, push):
    receiver = push.receiver("pacs")
    dept = department()
    name = push.system("PACS", receiver, departments=dept)
    number = paid_application(his, dept)
    receiver.wait_for(lambda es: [e for e in es if e["application_no"] == number])
    found = push.cli("messages", "search", "--application-no", number, "--direction", "out")
    assert "ApplicationReleased" in found and name in found and "PACS_CALLBACK" in found
    record_id = found.splitlines()[2].split()[0]
    shown = push.cli("messages", "show", record_id)
    assert "ApplicationReleasedResponse" in shown and "小明" in shown


def test_pause_holds_and_resume_delivers(his, push):
    receiver = push.receiver("pacs")
    dept = department()
    name = push.system("PACS", receiver, departments=dept)
    push.cli("deliveries", "pause", name)
    number = paid_application(his, dept)
    time.sleep(1.5)
    assert not receiver.entries()
    assert "paused" in push.cli("deliveries", "list")
    push.cli("deliveries", "resume", name)
    receiver.wait_for(lambda es: [e for e in es if e["application_no"] == number])


def test_callback_credentials_are_sent_as_a_username_token(his, push):
    receiver = push.receiver("pacs", "--username", "hpw", "--password", "callback-secret-1")
    dept = department()
    name = push.system("PACS", receiver, departments=dept)  # no credentials: the receiver refuses
    number = paid_application(his, dept)
    failed = push.wait_cli(lambda out: number in out, "deliveries", "list", "--system", name, "--status", "FAILED")
    assert "AuthenticationFailed" in failed
    for password_type in ("digest", "text"):
        push.cli("systems", "set-callback", name, "--url", receiver.url, "--username", "hpw",
                 "--password-type", password_type, "--password-stdin", stdin="callback-secret-1\n")
        accepted = paid_application(his, dept)
        receiver.wait_for(lambda es: [e for e in es if e["application_no"] == accepted and e["outcome"] == "applied"])
