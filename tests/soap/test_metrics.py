"""/metrics on the real two-worker server: every scrape, whichever worker answers it, adds up
the calls of every worker; states come from the database."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import requests

from tests.soap.conftest import application_request, client, unique
from tests.soap.push import Receiver, cli_ok, push_system

PING_OK = 'his_pacs_ws_calls_total{operation="Ping",outcome="OK",service="PACS"}'
PING_COUNT = 'his_pacs_ws_call_duration_seconds_count{operation="Ping",service="PACS"}'


def scrape(base_url: str) -> dict[str, float]:
    answer = requests.get(base_url + "/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    values = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_calls_are_counted_across_workers(base_url):
    pacs = client(base_url, "pacs")
    before = [scrape(base_url) for _ in range(6)]
    assert len({s.get(PING_OK, 0) for s in before}) == 1  # every worker tells the same
    for _ in range(10):
        pacs.Ping(request={"Echo": "x"})
    after = [scrape(base_url) for _ in range(6)]
    assert {s[PING_OK] for s in after} == {before[0].get(PING_OK, 0) + 10}
    assert {s[PING_COUNT] for s in after} == {before[0].get(PING_COUNT, 0) + 10}
    buckets = {k: v for k, v in after[0].items()
               if k.startswith('his_pacs_ws_call_duration_seconds_bucket{le="+Inf",operation="Ping",service="PACS"')}
    assert list(buckets.values()) == [after[0][PING_COUNT]]


def test_refused_calls_are_counted_by_fault_and_by_system(base_url):
    before = scrape(base_url)
    stranger = client(base_url, "his", "his-test", "not-the-password")
    for _ in range(3):
        try:
            stranger.Ping(request={"Echo": "x"})
        except Exception:
            pass
    after = scrape(base_url)
    key = 'his_pacs_ws_calls_total{operation="Ping",outcome="AuthenticationFailed",service="HIS"}'
    assert after[key] - before.get(key, 0) == 3
    system = 'his_pacs_ws_auth_failures_total{system="his-test"}'
    assert after[system] - before[system] == 3


def test_operations_outside_the_contract_share_one_label(base_url):
    body = ('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v="urn:his-pacs-ws:v1">'
            f'<s:Body><v:Made{unique("Up")}/></s:Body></s:Envelope>')
    requests.post(base_url + "/ws/his", data=body.encode(), headers={"Content-Type": "text/xml"}, timeout=10)
    names = [k for k in scrape(base_url) if k.startswith("his_pacs_ws_calls_total")]
    assert not any("MadeUp" in k for k in names) and any('operation="other"' in k for k in names)


def test_open_and_overdue_critical_values_come_from_the_database(base_url, his, pacs):
    before = scrape(base_url)
    request = application_request()
    his.SubmitApplication(request=request)
    his.ConfirmPayment(request={"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                                "Amount": "150.00", "PaidAt": datetime.now(timezone.utc)})
    pacs.RaiseCriticalValue(request={
        "MessageId": unique("M"), "CriticalValueNo": unique("CV"), "ApplicationNo": request["ApplicationNo"],
        "Finding": "气胸", "ReportedBy": {"Code": "R1", "Name": "赵医生"},
        "ReportedAt": datetime.now(timezone.utc) - timedelta(minutes=5)})
    after = scrape(base_url)
    assert after["his_pacs_ws_critical_values_open"] == before["his_pacs_ws_critical_values_open"] + 1
    assert after["his_pacs_ws_critical_values_overdue"] == before["his_pacs_ws_critical_values_overdue"] + 1
    assert after["his_pacs_ws_database_up"] == 1
    text = requests.get(base_url + "/metrics", timeout=10).text
    assert request["Patient"]["PatientId"] not in text and not re.search(r"[\u4e00-\u9fff]", text)


def test_delivery_attempts_are_counted_by_the_deliverer_and_queues_read_from_the_database(
        base_url, server, database_url, his, tmp_path):
    receiver = Receiver("pacs", tmp_path, "--client-fault", "ApplicationReleased").start()
    dept = "M" + uuid.uuid4().hex[:6].upper()
    name = push_system(database_url, server.env, "PACS", receiver.url, departments=dept)
    try:
        request = application_request(executing=dept)
        his.SubmitApplication(request=request)
        his.ConfirmPayment(request={"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                                    "Amount": "150.00", "PaidAt": datetime.now(timezone.utc)})
        receiver.wait_for(lambda es: [e for e in es if e["outcome"] == "client-fault"])
        attempts = f'his_pacs_ws_delivery_attempts_total{{outcome="CLIENT_FAULT",receiver="{name}"}}'
        failed = f'his_pacs_ws_outbox_failed{{receiver="{name}"}}'
        deadline = time.monotonic() + 15
        while not ((values := scrape(base_url)).get(failed) == 1 and values.get(attempts) == 1):
            assert time.monotonic() < deadline, {k: v for k, v in values.items() if name in k}
            time.sleep(0.3)
        assert values[f'his_pacs_ws_outbox_depth{{receiver="{name}"}}'] == 0
        assert values[f'his_pacs_ws_receiver_paused{{receiver="{name}"}}'] == 0
        assert values[f'his_pacs_ws_delivery_duration_seconds_count{{receiver="{name}"}}'] == 1
    finally:
        cli_ok(database_url, server.env, "systems", "callback-off", name)
        receiver.stop()
