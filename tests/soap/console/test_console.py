"""The console in a real browser: what hospital IT and the quality office do with it, and
what an attacker's page cannot make it do."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.soap.conftest import application_request, run_cli, unique
from tests.soap.push import Receiver, cli_ok, push_system
from tests.soap.console.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    VIEWER,
    VIEWER_PASSWORD,
    session_cookie,
    sign_in,
)

RADIOLOGIST = {"Code": "RAD01", "Name": "赵医生"}


def paid_application(his) -> dict:
    request = application_request()
    his.SubmitApplication(request=request)
    his.ConfirmPayment(request={"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                                "Amount": "150.00", "PaidAt": datetime.now(timezone.utc)})
    return request


def raise_value(pacs, application_no: str, minutes_ago: int, finding: str = "大面积脑梗死") -> str:
    number = unique("CV")
    pacs.RaiseCriticalValue(request={
        "MessageId": unique("M"), "CriticalValueNo": number, "ApplicationNo": application_no, "Finding": finding,
        "ReportedBy": RADIOLOGIST, "ReportedAt": datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)})
    return number


def test_find_the_exchange_open_the_application_see_the_board_and_sign_out(page, console, his, pacs):
    request = paid_application(his)
    no = request["ApplicationNo"]
    overdue = raise_value(pacs, no, minutes_ago=5)  # the test server's deadline is 2 minutes
    waiting = raise_value(pacs, no, minutes_ago=0, finding="张力性气胸")

    sign_in(page, console, VIEWER, VIEWER_PASSWORD, "/messages")
    assert page.url.endswith("/console/messages")  # back where the sign-in began

    page.fill("input[name=application_no]", no)
    page.click("#search")
    rows = page.locator("#calls tr").all_inner_texts()[1:]
    assert [r.split("\t")[5] for r in reversed(rows)] == ["SubmitApplication", "ConfirmPayment",
                                                          "RaiseCriticalValue", "RaiseCriticalValue"]

    page.locator("#calls a.call-link").last.click()  # the oldest: SubmitApplication
    request_text = page.inner_text("#request")
    assert no in request_text and "小明" in request_text and "\n  " in request_text  # indented
    assert "his-test-password-1" not in request_text and "***" in request_text  # credentials masked
    assert "SubmitApplicationResponse" in page.inner_text("#response")
    assert page.locator("#request").bounding_box()["x"] < page.locator("#response").bounding_box()["x"]

    page.click(f"text={no}")
    assert page.inner_text("#status") == "RELEASED"
    assert "PAID" in page.inner_text("#timeline")
    assert "150.00" in page.inner_text("#charges")
    assert overdue in page.inner_text("#critical-values")
    assert "ConfirmPayment" in page.inner_text("#app-calls")

    page.click("header nav >> text=危急值")
    board = page.locator("#board tr[data-no]")
    numbers = board.evaluate_all("rows => rows.map(r => [r.dataset.no, r.className])")
    overdue_flags = [cls == "overdue" for _, cls in numbers]
    assert overdue_flags == sorted(overdue_flags, reverse=True)  # every overdue value above the rest
    row = page.locator(f"#board tr[data-no={overdue}]")
    assert row.get_attribute("class") == "overdue"
    assert re.fullmatch(r"超时 [23] 分钟", row.locator("td.left").inner_text())
    assert re.fullmatch(r"[01]", page.locator(f"#board tr[data-no={waiting}] td.left").inner_text())

    page.click("#sign-out")
    assert "/console/login" in page.url
    page.goto(console.url + "/critical")
    assert "/console/login" in page.url  # the session is over


def test_the_audit_exports_as_csv_with_who_and_when(page, console, his, pacs):
    request = paid_application(his)
    number = raise_value(pacs, request["ApplicationNo"], minutes_ago=30, finding="=HYPERLINK(\"x\")")
    sign_in(page, console, VIEWER, VIEWER_PASSWORD, "/critical")
    with page.expect_download() as download:
        page.click("#export")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text("utf-8-sig"))))
    mine = next(r for r in rows if r["CriticalValueNo"] == number)
    assert (mine["Status"], mine["Overdue"], mine["ReportedBy"]) == ("RAISED", "yes", "赵医生")
    assert mine["Finding"].startswith("'=")  # a spreadsheet shows it as text, never runs it


def test_an_admin_disables_a_system_and_a_viewer_is_refused(page, console, server, database_url):
    name = unique("pacs-x")
    added = run_cli("systems", "add", name, "--role", "PACS", "--password-stdin", "--database-url", database_url,
                    env=server.env, stdin="a-long-password-1\n")
    assert added.returncode == 0, added.stderr

    sign_in(page, console, VIEWER, VIEWER_PASSWORD, "/systems")
    row = page.locator(f"#systems tr[data-system='{name}']")
    assert "启用" in row.inner_text() and row.locator("button").count() == 0  # no button for a viewer
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    answer = page.request.post(f"{console.url}/systems/{name}/disable", form={"csrf": csrf})
    assert answer.status == 403 and "需要管理员权限" in answer.text()

    page.click("#sign-out")
    sign_in(page, console, ADMIN, ADMIN_PASSWORD, "/systems")
    page.locator(f"#systems tr[data-system='{name}'] button").click()
    assert "已停用" in page.locator(f"#systems tr[data-system='{name}']").inner_text()
    page.click("header nav >> text=操作审计")
    audit = page.inner_text("#operator-audit")
    assert re.search(rf"{ADMIN}\tSYSTEM_DISABLE\t{re.escape(name)}\tOK", audit)
    assert re.search(rf"{VIEWER}\tSYSTEM_DISABLE\t{re.escape(name)}\tREFUSED", audit)


def test_a_form_without_the_session_token_or_from_another_site_changes_nothing(page, console, server, database_url):
    name = unique("his-x")
    added = run_cli("systems", "add", name, "--role", "HIS", "--password-stdin", "--database-url", database_url,
                    env=server.env, stdin="a-long-password-1\n")
    assert added.returncode == 0, added.stderr
    sign_in(page, console, ADMIN, ADMIN_PASSWORD, "/systems")
    target = f"{console.url}/systems/{name}/disable"
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")

    assert page.request.post(target, form={}).status == 403  # no token
    assert page.request.post(target, form={"csrf": "x" + csrf[1:]}).status == 403  # a wrong one
    foreign = page.request.post(target, form={"csrf": csrf}, headers={"Origin": "http://evil.example"})
    assert foreign.status == 403  # the right one, from a page elsewhere
    # an attacker's page posting the form: the session cookie is SameSite=Strict, so it is not even sent
    cookie = next(c for c in page.context.cookies() if c["name"] == "hpw_session")
    assert cookie["sameSite"] == "Strict" and cookie["httpOnly"] and cookie["path"] == "/console"

    page.reload()
    assert "启用" in page.locator(f"#systems tr[data-system='{name}']").inner_text()  # still enabled
    assert page.request.post(target, form={"csrf": csrf}).status == 200  # the console's own form works
    behind_proxy = page.request.post(target, form={"csrf": csrf}, headers={
        "Origin": "https://his-pacs.example", "X-Forwarded-Host": "his-pacs.example"})
    assert behind_proxy.status == 200  # as a browser sees it behind a TLS proxy


def test_the_sign_in_form_needs_its_own_token(page, console):
    page.goto(console.url + "/login")
    answer = page.request.post(console.url + "/login", form={"name": ADMIN, "password": ADMIN_PASSWORD,
                                                            "csrf": "forged"})
    assert answer.status == 403 and session_cookie(page) is None


def plant(page, value: str) -> None:
    """A session cookie set in the browser as the console sets its own (same name and path)."""
    page.context.add_cookies([{"name": "hpw_session", "value": value, "domain": "127.0.0.1", "path": "/console",
                               "httpOnly": True, "sameSite": "Strict"}])


def test_a_session_id_from_before_sign_in_is_never_kept(browser, page, console):
    # the attacker signs in and plants the own session cookie in the victim's browser
    attacker = browser.new_context()
    attacker_page = attacker.new_page()
    sign_in(attacker_page, console, VIEWER, VIEWER_PASSWORD)
    planted = session_cookie(attacker_page)
    attacker.close()
    plant(page, planted)
    page.goto(console.url + "/systems")
    assert page.inner_text("#operator").startswith(VIEWER)  # the planted session works, for now

    page.click("#sign-out")
    plant(page, "chosen-by-the-attacker")
    sign_in(page, console, ADMIN, ADMIN_PASSWORD)
    mine = session_cookie(page)
    assert mine not in (planted, "chosen-by-the-attacker")
    # and a planted valid session ends at the victim's sign-in
    other = browser.new_context()
    other_page = other.new_page()
    sign_in(other_page, console, VIEWER, VIEWER_PASSWORD)
    planted = session_cookie(other_page)
    page.context.clear_cookies()
    plant(page, planted)
    page.goto(console.url + "/login")
    page.fill("#name", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#sign-in")
    assert page.inner_text("#operator").startswith(ADMIN)
    other_page.goto(console.url + "/systems")
    assert "/console/login" in other_page.url  # the planted session is gone
    other.close()


def test_guessing_a_password_is_stopped_after_five_tries(page, console, server, database_url):
    name = unique("op")
    added = run_cli("operators", "add", name, "--role", "viewer", "--password-stdin", "--database-url", database_url,
                    env=server.env, stdin="the-right-password-1\n")
    assert added.returncode == 0, added.stderr
    for guess in range(5):
        page.goto(console.url + "/login")
        page.fill("#name", name)
        page.fill("#password", f"guess-{guess}")
        page.click("#sign-in")
        assert page.inner_text("#message") == "用户名或密码错误"
    page.fill("#name", name)
    page.fill("#password", "the-right-password-1")
    page.click("#sign-in")
    assert "失败次数过多" in page.inner_text("#message") and session_cookie(page) is None


def test_english_labels_and_a_hospital_screen(page, console):
    sign_in(page, console, VIEWER, VIEWER_PASSWORD, "/critical")
    assert "危急值" in page.inner_text("header nav")  # Chinese by default
    page.click("text=English")
    assert "Critical values" in page.inner_text("header nav") and page.url.endswith("/console/critical")
    for path in ("/critical", "/messages", "/systems", "/charts", "/deliveries"):
        page.goto(console.url + path)
        assert "Sign out" in page.inner_text("header")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366, path  # no sideways scrolling
    page.click("text=中文")
    assert "危急值" in page.inner_text("header nav")


def test_no_patient_data_in_the_server_log(page, console, server, his, pacs):
    request = paid_application(his)
    patient = request["Patient"]["PatientId"]
    raise_value(pacs, request["ApplicationNo"], minutes_ago=3)
    sign_in(page, console, ADMIN, ADMIN_PASSWORD, f"/messages?patient_id={patient}")
    page.goto(f"{console.url}/applications/{request['ApplicationNo']}")
    page.goto(f"{console.url}/critical")
    page.goto(f"{console.url}/messages/999999999")
    log = server.log_path.read_text("utf-8", "replace")
    assert patient not in log and "小明" not in log and ADMIN_PASSWORD not in log


@pytest.fixture
def refusing_pacs(server, database_url, tmp_path):
    """A PACS whose receiver refuses ApplicationReleased (a Client fault), for one department."""
    receiver = Receiver("pacs", tmp_path, "--client-fault", "ApplicationReleased").start()
    dept = "W" + uuid.uuid4().hex[:6].upper()
    name = push_system(database_url, server.env, "PACS", receiver.url, departments=dept)
    yield receiver, name, dept
    cli_ok(database_url, server.env, "systems", "callback-off", name)
    receiver.stop()


def test_an_admin_retries_a_failed_delivery_and_a_viewer_is_refused(page, console, his, refusing_pacs):
    receiver, name, dept = refusing_pacs
    request = application_request(executing=dept)
    his.SubmitApplication(request=request)
    his.ConfirmPayment(request={"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                                "Amount": "150.00", "PaidAt": datetime.now(timezone.utc)})
    no = request["ApplicationNo"]
    receiver.wait_for(lambda es: [e for e in es if e["outcome"] == "client-fault"])

    sign_in(page, console, VIEWER, VIEWER_PASSWORD, f"/deliveries?system={name}")
    row = page.locator("#failed tr[data-delivery]", has_text=no)
    deadline = time.monotonic() + 15
    while row.count() == 0:  # the deliverer commits the outcome a moment after the receiver answered
        assert time.monotonic() < deadline, page.inner_text("#failed")
        time.sleep(0.3)
        page.reload()
    delivery_id = row.get_attribute("data-delivery")
    assert "FAILED" in row.inner_text() and "CLIENT_FAULT" in row.inner_text() and "Client.Refused" in row.inner_text()
    assert row.locator("button").count() == 0  # a viewer has no retry button
    assert "1" in page.locator(f"#queues tr[data-receiver='{name}']").inner_text()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(f"{console.url}/deliveries/{delivery_id}/retry", form={"csrf": csrf})
    assert refused.status == 403
    page.click("#sign-out")

    receiver.stop()
    receiver.start("--fail", "0")  # the vendor fixed it
    sign_in(page, console, ADMIN, ADMIN_PASSWORD, f"/deliveries?system={name}")
    page.locator(f"#failed tr[data-delivery='{delivery_id}'] button.retry").click()
    assert "已完成" in page.inner_text("#done")
    applied = receiver.wait_for(lambda es: [e for e in es if e["outcome"] == "applied" and e["application_no"] == no])
    assert applied[0]["message_id"] == receiver.entries()[0]["message_id"]  # the same notification, again

    page.locator(f"#queues tr[data-receiver='{name}'] button", has_text="暂停").click()
    assert "已暂停" in page.locator(f"#queues tr[data-receiver='{name}']").inner_text()
    page.locator(f"#queues tr[data-receiver='{name}'] button", has_text="恢复").click()
    assert "已暂停" not in page.locator(f"#queues tr[data-receiver='{name}']").inner_text()

    page.goto(f"{console.url}/applications/{no}")
    assert "ApplicationReleased" in page.inner_text("#app-deliveries")
    assert "推送" in page.inner_text("#app-calls")  # the outbound attempts are among its calls
    page.goto(f"{console.url}/audit")
    audit = page.inner_text("#operator-audit")
    for line in (rf"{ADMIN}\tDELIVERY_RETRY\tdelivery {delivery_id}\tOK",
                 rf"{VIEWER}\tDELIVERY_RETRY\tdelivery {delivery_id}\tREFUSED",
                 rf"{ADMIN}\tRECEIVER_PAUSE\t{re.escape(name)}\tOK", rf"{ADMIN}\tRECEIVER_RESUME\t{re.escape(name)}\tOK"):
        assert re.search(line, audit), line


def test_a_partner_systems_credentials_do_not_sign_in(page, console):
    from tests.soap.conftest import HIS_PASSWORD, HIS_USER

    page.goto(console.url + "/login")
    page.fill("#name", HIS_USER)
    page.fill("#password", HIS_PASSWORD)
    page.click("#sign-in")
    assert page.inner_text("#message") == "用户名或密码错误" and session_cookie(page) is None
