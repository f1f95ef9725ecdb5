"""WS-Security and authorization: every refusal a hospital checks before connecting a vendor."""

from __future__ import annotations

import base64
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from sqlalchemy import select
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from his_pacs_ws.db.models import CallRecord
from tests.soap.conftest import (
    HIS_PASSWORD, HIS_TWO_PASSWORD, HIS_TWO_USER, HIS_USER, NURSE, PACS_CT_PASSWORD, PACS_CT_USER,
    PACS_PASSWORD, PACS_USER, T0, TNS, application_request, client, fault_code, fault_detail, run_cli, unique,
)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PING = f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:v="{TNS}">{{header}}<soapenv:Body><v:Ping/></soapenv:Body></soapenv:Envelope>'


def ping_with(base_url, name, token):
    """Ping through a zeep client carrying exactly this token."""
    import zeep

    from tests.soap.conftest import WSDL

    service = "HisService" if name == "his" else "PacsService"
    c = zeep.Client(str(WSDL / f"{name}.wsdl"), wsse=token)
    return c.create_service(f"{{{TNS}}}{service}", f"{base_url}/ws/{name}").Ping()


def refused(call) -> Fault:
    with pytest.raises(Fault) as caught:
        call()
    return caught.value


def assert_authentication_failed(fault: Fault):
    assert fault_code(fault) == "AuthenticationFailed"
    assert fault.message == "authentication failed"  # one message for every reason
    assert fault_detail(fault)["Retryable"] == "false"


def test_no_token(base_url):
    answer = requests.post(f"{base_url}/ws/his", data=PING.format(header="").encode(), timeout=10,
                           headers={"Content-Type": "text/xml; charset=utf-8"})
    assert answer.status_code == 500
    assert b"Client.AuthenticationFailed" in answer.content


@pytest.mark.parametrize("digest", [True, False], ids=["digest", "text"])
def test_text_and_digest_tokens(base_url, digest):
    assert client(base_url, "his", digest=digest).Ping().ServiceVersion
    assert client(base_url, "pacs", digest=digest).Ping().ServiceVersion


@pytest.mark.parametrize("user, password", [(HIS_USER, "wrong-password-123"), ("nobody", HIS_PASSWORD)],
                         ids=["wrong password", "unknown user"])
@pytest.mark.parametrize("digest", [True, False], ids=["digest", "text"])
def test_wrong_credentials(base_url, user, password, digest):
    assert_authentication_failed(refused(lambda: client(base_url, "his", user, password, digest=digest).Ping()))


def test_stale_and_future_tokens(base_url):
    for created in (datetime.now(timezone.utc) - timedelta(minutes=6), datetime.now(timezone.utc) + timedelta(minutes=6)):
        token = UsernameToken(HIS_USER, HIS_PASSWORD, use_digest=True, created=created)
        assert_authentication_failed(refused(lambda: ping_with(base_url, "his", token)))


def test_expired_timestamp(base_url):
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    expired = (datetime.now(timezone.utc) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = (f'<soapenv:Header><wsse:Security xmlns:wsse="{wsse}" xmlns:wsu="{wsu}"><wsu:Timestamp>'
              f"<wsu:Expires>{expired}</wsu:Expires></wsu:Timestamp><wsse:UsernameToken>"
              f"<wsse:Username>{HIS_USER}</wsse:Username><wsse:Password>{HIS_PASSWORD}</wsse:Password>"
              "</wsse:UsernameToken></wsse:Security></soapenv:Header>")
    answer = requests.post(f"{base_url}/ws/his", data=PING.format(header=header).encode(), timeout=10,
                           headers={"Content-Type": "text/xml; charset=utf-8"})
    assert b"Client.AuthenticationFailed" in answer.content
    fresh = header.replace(expired, (datetime.now(timezone.utc) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    answer = requests.post(f"{base_url}/ws/his", data=PING.format(header=fresh).encode(), timeout=10,
                           headers={"Content-Type": "text/xml; charset=utf-8"})
    assert answer.status_code == 200


def test_a_replayed_token_is_refused(base_url):
    token = UsernameToken(HIS_USER, HIS_PASSWORD, use_digest=True, nonce=os.urandom(8).hex(),
                          created=datetime.now(timezone.utc))
    assert ping_with(base_url, "his", token).ServiceVersion
    assert_authentication_failed(refused(lambda: ping_with(base_url, "his", token)))


def test_a_digest_needs_nonce_and_created(base_url):
    raw = base64.b64encode(b"x" * 20).decode()
    header = ('<soapenv:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-'
              'wssecurity-secext-1.0.xsd"><wsse:UsernameToken>'
              f'<wsse:Username>{HIS_USER}</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/'
              f'oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{raw}</wsse:Password>'
              "</wsse:UsernameToken></wsse:Security></soapenv:Header>")
    answer = requests.post(f"{base_url}/ws/his", data=PING.format(header=header).encode(), timeout=10,
                           headers={"Content-Type": "text/xml; charset=utf-8"})
    assert b"Client.AuthenticationFailed" in answer.content


def test_each_system_calls_only_its_own_service(base_url):
    for name, user, password in (("pacs", HIS_USER, HIS_PASSWORD), ("his", PACS_USER, PACS_PASSWORD)):
        fault = refused(lambda: client(base_url, name, user, password).Ping())
        assert fault_code(fault) == "AccessDenied"


def test_a_disabled_system_and_a_new_password(base_url, server, database_url):
    name, password = unique("his-"), "first-password-123"
    run_cli("systems", "add", name, "--role", "HIS", "--password-stdin", "--database-url", database_url,
            env=server.env, stdin=password + "\n")
    disabled = run_cli("systems", "disable", name, "--database-url", database_url, env=server.env)
    assert disabled.returncode == 0, disabled.stderr
    assert_authentication_failed(refused(lambda: client(base_url, "his", name, password).Ping()))
    other, second = unique("his-"), "second-password-123"
    run_cli("systems", "add", other, "--role", "HIS", "--password-stdin", "--database-url", database_url,
            env=server.env, stdin="first-password-123\n")
    changed = run_cli("systems", "set-password", other, "--password-stdin", "--database-url", database_url,
                      env=server.env, stdin=second + "\n")
    assert changed.returncode == 0, changed.stderr
    assert client(base_url, "his", other, second).Ping().ServiceVersion
    listing = run_cli("systems", "list", "--database-url", database_url, env=server.env)
    row = next(line for line in listing.stdout.splitlines() if line.startswith(name))
    assert "NO" in row.split() and " 1 " in f" {row} "  # disabled, one failed attempt counted


def test_systems_cli_refuses_bad_input(server, database_url):
    def add(*args, stdin="long-enough-password"):
        return run_cli("systems", "add", *args, "--database-url", database_url, env=server.env, stdin=stdin)

    assert add("x1", "--role", "HIS").returncode == 2  # no --password-stdin
    assert "12 characters" in add("x2", "--role", "HIS", "--password-stdin", stdin="short\n").stderr
    assert "exists" in add(HIS_USER, "--role", "HIS", "--password-stdin").stderr
    assert "PACS" in add("x3", "--role", "HIS", "--departments", "CT", "--password-stdin").stderr


def test_a_department_bound_pacs_sees_and_acts_on_its_departments_only(base_url, his):
    def released(executing):
        request = application_request(executing=executing)
        his.SubmitApplication(request=request)
        his.ConfirmPayment(request={"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                                    "Amount": Decimal("150.00"), "PaidAt": T0})
        return request

    ct, mr = released("CT"), released("MR")
    ct_pacs = client(base_url, "pacs", PACS_CT_USER, PACS_CT_PASSWORD)
    assert ct_pacs.QueryApplications(request={"ApplicationNo": ct["ApplicationNo"]}) is not None
    assert ct_pacs.QueryApplications(request={"ApplicationNo": mr["ApplicationNo"]}).Applications is None
    status = {"MessageId": unique("M"), "Status": "REGISTERED", "OccurredAt": T0, "AccessionNo": unique("ACC"),
              "Operator": NURSE}
    assert ct_pacs.ReportStatus(request={**status, "ApplicationNo": ct["ApplicationNo"]}).Applied is True
    fault = refused(lambda: ct_pacs.ReportStatus(request={**status, "MessageId": unique("M"),
                                                          "ApplicationNo": mr["ApplicationNo"]}))
    assert fault_code(fault) == "AccessDenied"
    fault = refused(lambda: ct_pacs.QueryEmr(request={"PatientId": mr["Patient"]["PatientId"]}))
    assert fault_code(fault) == "AccessDenied"


def test_message_ids_are_unique_per_system(base_url):
    message_id = unique("M")
    first, second = application_request(MessageId=message_id), application_request(MessageId=message_id)
    client(base_url, "his").SubmitApplication(request=first)
    other = client(base_url, "his", HIS_TWO_USER, HIS_TWO_PASSWORD).SubmitApplication(request=second)
    assert other.ApplicationNo == second["ApplicationNo"]


def test_refusals_are_recorded_under_the_claimed_name_without_the_password(base_url, engine):
    refused(lambda: client(base_url, "his", HIS_USER, "wrong-password-456", digest=False).Ping())
    client(base_url, "his", digest=False).Ping()
    with engine.connect() as conn:
        rows = conn.execute(select(CallRecord.caller, CallRecord.operation, CallRecord.fault_code,
                                   CallRecord.request_body)
                            .where(CallRecord.service == "HIS", CallRecord.operation == "Ping")
                            .order_by(CallRecord.id.desc()).limit(2)).all()
    (ok_caller, _, ok_fault, ok_body), (bad_caller, _, bad_fault, bad_body) = rows
    assert (bad_caller, bad_fault, ok_caller, ok_fault) == (HIS_USER, "AuthenticationFailed", HIS_USER, None)
    for body in (ok_body, bad_body):  # PasswordText tokens: the record keeps no password
        assert b"Password" in body and b">***</" in body
        assert HIS_PASSWORD.encode() not in body and b"wrong-password-456" not in body


def test_wsdl_address_follows_each_request(base_url):
    port = base_url.rsplit(":", 1)[1]
    forged = requests.get(f"{base_url}/ws/his?wsdl", headers={"Host": "evil.example:666"}, timeout=10)
    assert b'location="http://evil.example:666/ws/his"' in forged.content  # its own answer only
    plain = requests.get(f"{base_url}/ws/his?wsdl", timeout=10)
    assert f'location="http://127.0.0.1:{port}/ws/his"'.encode() in plain.content
    for host in ('x" onload="1', "a b", "<x>"):
        odd = requests.get(f"{base_url}/ws/pacs?wsdl", headers={"Host": host}, timeout=10)
        assert odd.status_code == 200 and host.encode() not in odd.content
    assert requests.get(f"{base_url}/ws/his", timeout=10).status_code == 405


def test_serve_refuses_a_key_that_cannot_open_the_passwords(server, database_url):
    from his_pacs_ws.services.secrets import new_key

    env = {**server.env, "HIS_PACS_SECRET_KEY": new_key()}
    result = run_cli("serve", "--database-url", database_url, "--port", "1", env=env)
    assert result.returncode == 2
    assert "cannot open the passwords" in result.stderr and HIS_USER in result.stderr
