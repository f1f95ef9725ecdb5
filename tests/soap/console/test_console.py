"""The console in a real browser: what hospital IT and the quality office do with it, and
what an attacker's page cannot make it do."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

from tests.soap.conftest import application_request, run_cli, unique
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
