"""An envelope fuzzer: valid calls, mutated so that none is valid any more (a required
element dropped, a single one doubled, one renamed, a typed value garbled, an element
added, the bytes cut or broken, the credentials taken away). Every answer must be a SOAP
fault whose code is the one the mutation calls for, the same each time, and nothing may
be stored: no application, no ledger line, no used MessageId."""

from __future__ import annotations

import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sqlalchemy import text

from tests.soap.conftest import TNS, security_header

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
GARBAGE = ["", "abc", "12,5", "-1", "1e999", "2026-13-45T99:00:00", "张三丰" * 50, "<![CDATA[x]]>", "true"]


def submit_fields(no: str, message_id: str) -> list[tuple[str, str]]:
    return [
        ("MessageId", message_id), ("ApplicationNo", no),
        ("Patient", f"<v:PatientId>P{no}</v:PatientId><v:Name>张三丰</v:Name><v:Sex>M</v:Sex>"),
        ("Visit", f"<v:VisitNo>V{no}</v:VisitNo><v:PatientType>INPATIENT</v:PatientType>"),
        ("OrderingDoctor", "<v:Code>D1</v:Code><v:Name>王医生</v:Name>"),
        ("OrderingDepartmentCode", "NK"), ("ExecutingDepartmentCode", "CT"),
        ("OrderedAt", "2026-11-26T09:00:00"),
        ("Items", "<v:ApplicationItem><v:ItemCode>CT001</v:ItemCode><v:ItemName>头颅CT</v:ItemName>"
                  "<v:Quantity>1</v:Quantity><v:UnitPrice>150.00</v:UnitPrice></v:ApplicationItem>"),
    ]


def send_fields(no: str, message_id: str) -> list[tuple[str, str]]:
    return [("MessageId", message_id), ("ApplicationNo", no),
            ("Nurse", "<v:Code>N1</v:Code><v:Name>李护士</v:Name>"), ("SentAt", "2026-11-26T09:05:00")]


TYPED = {"OrderedAt", "SentAt", "Visit", "Patient", "Items", "OrderingDoctor", "Nurse"}  # garbage text is invalid here


def envelope(operation: str, fields: list[tuple[str, str]], header: str | None = None) -> bytes:
    inner = "".join(f"<v:{name}>{value}</v:{name}>" for name, value in fields)
    return (f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:v="{TNS}">'
            f"{security_header() if header is None else header}<soapenv:Body><v:{operation}><v:request>{inner}"
            f"</v:request></v:{operation}></soapenv:Body></soapenv:Envelope>").encode()


@st.composite
def mutations(draw, operation: str, fields: list[tuple[str, str]]):
    """(the mutated body, the fault code it must get)."""
    kind = draw(st.sampled_from(["drop", "double", "rename", "garble", "add", "cut", "break", "no token",
                                 "wrong password", "namespace"]))
    at = draw(st.integers(0, len(fields) - 1))
    changed = list(fields)
    if kind == "drop":
        del changed[at]
    elif kind == "double":
        changed.insert(at, changed[at])
    elif kind == "rename":
        changed[at] = (changed[at][0] + "X", changed[at][1])
    elif kind == "garble":
        name = draw(st.sampled_from(sorted(TYPED & {n for n, _ in fields})))
        index = next(i for i, (n, _) in enumerate(fields) if n == name)
        changed[index] = (name, draw(st.sampled_from([g for g in GARBAGE if g not in ("", "true")])))
    elif kind == "add":
        changed.insert(at, ("Discount", "10"))
    if kind in ("drop", "double", "rename", "garble", "add"):
        return envelope(operation, changed), "SchemaValidationError"
    body = envelope(operation, fields)
    if kind == "cut":
        return body[:draw(st.integers(10, len(body) - 20))], "XmlSyntaxError"
    if kind == "break":
        where = draw(st.integers(0, len(body) - 1))
        return body[:where] + b"\xff" + body[where + 1:], "XmlSyntaxError"
    if kind == "no token":
        return envelope(operation, fields, header=""), "AuthenticationFailed"
    if kind == "wrong password":
        return envelope(operation, fields, header=security_header(password="not-the-password-1")), \
            "AuthenticationFailed"
    return body.replace(f'xmlns:v="{TNS}"'.encode(), b'xmlns:v="urn:his-pacs-ws:v2"'), "SchemaValidationError"


def post(base_url: str, body: bytes):
    return requests.post(f"{base_url}/ws/his", data=body, timeout=30,
                         headers={"Content-Type": "text/xml; charset=utf-8"})


def fault_code(answer) -> str:
    assert answer.status_code == 500 and answer.headers["Content-Type"].startswith("text/xml")
    fault = etree.fromstring(answer.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None and b"Traceback" not in answer.content
    code = fault.findtext(f"detail/{{{TNS}}}ServiceFault/{{{TNS}}}Code")
    assert fault.findtext("faultcode") == f"soap11env:Client.{code}"
    assert "张三丰" not in (fault.findtext("faultstring") or "")
    return code


FUZZ = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def new_ids() -> tuple[str, str]:
    return f"A{uuid.uuid4().hex[:12]}", f"M{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def stored(engine):
    def counts(no: str, message_id: str) -> tuple[int, int, int]:
        with engine.connect() as conn:
            return (
                conn.scalar(text("SELECT count(*) FROM applications WHERE application_no = :no"), {"no": no}),
                conn.scalar(text("SELECT count(*) FROM charge_lines c JOIN applications a ON a.id = c.application_pk"
                                 " WHERE a.application_no = :no"), {"no": no}),
                conn.scalar(text("SELECT count(*) FROM processed_messages WHERE message_id = :m"), {"m": message_id}),
            )
    return counts


def test_mutated_submissions_get_stable_faults_and_store_nothing(base_url, stored):
    @FUZZ
    @given(st.data())
    def run(data):
        no, message_id = new_ids()
        body, expected = data.draw(mutations("SubmitApplication", submit_fields(no, message_id)))
        codes = {fault_code(post(base_url, body)) for _ in range(2)}
        assert codes == {expected}, body[:400]
        assert stored(no, message_id) == (0, 0, 0)

    run()


def test_mutated_sends_get_stable_faults_and_change_nothing(base_url, stored):
    no, _ = new_ids()
    assert post(base_url, envelope("SubmitApplication", submit_fields(no, new_ids()[1]))).status_code == 200

    @FUZZ
    @given(st.data())
    def run(data):
        message_id = new_ids()[1]
        body, expected = data.draw(mutations("SendInpatientOrder", send_fields(no, message_id)))
        assert {fault_code(post(base_url, body)) for _ in range(2)} == {expected}, body[:400]
        assert stored(no, message_id) == (1, 0, 0)  # still NEW: nothing charged, the MessageId unused

    run()
    assert post(base_url, envelope("SendInpatientOrder", send_fields(no, new_ids()[1]))).status_code == 200
    assert stored(no, "-")[:2] == (1, 1)  # the valid call still works, and the check can see a line
