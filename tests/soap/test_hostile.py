"""A corpus of hostile payloads: each gets a SOAP fault envelope, never a bare HTTP 500 or
a stack trace, the service keeps answering, and no patient text reaches the log."""

from __future__ import annotations

import pytest
import requests
from lxml import etree

from tests.soap.conftest import TNS, security_header

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
PATIENT = "张三丰"  # planted in payloads; must never reach the server log


def envelope(body: str, header: str | None = None) -> bytes:
    return (f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:v="{TNS}">{header or security_header()}'
            f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>").encode()


GET = f"<v:GetApplication><v:request><v:ApplicationNo>{PATIENT}</v:ApplicationNo></v:request></v:GetApplication>"

CORPUS = {
    "xxe to a file": (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                      + envelope("<v:Ping>&x;</v:Ping>"), "DTDNotAllowed"),
    "xxe to a url": (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>'
                     + envelope("<v:Ping>&x;</v:Ping>"), "DTDNotAllowed"),
    "billion laughs": (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "lol">'
                       + b"".join(b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">'
                                  % ((98 + i,) + (97 + i,) * 10) for i in range(9))
                       + b"]>" + envelope("<v:Ping>&j;</v:Ping>"), "DTDNotAllowed"),
    "quadratic blowup": (b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "' + b"x" * 20000 + b'">]>'
                         + envelope("<v:Ping>" + "&a;" * 2000 + "</v:Ping>"), "DTDNotAllowed"),
    "parameter entity": (b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>' + envelope(GET),
                         "DTDNotAllowed"),
    "href cycle": (envelope('<v:GetApplication><v:request href="#a"/></v:GetApplication>'
                            '<v:ApplicationNo id="a"><v:x href="#a"/></v:ApplicationNo>'), "SchemaValidationError"),
    "deep nesting": (envelope("<v:x>" * 5000 + "</v:x>" * 5000), "XmlSyntaxError"),
    "truncated": (envelope(GET)[:-40], "XmlSyntaxError"),
    "not xml": (f"GET /etc/passwd {PATIENT}".encode(), "XmlSyntaxError"),
    "bad utf-8": (envelope(GET).replace(PATIENT.encode(), b"\xe5\xbc\xa0\xff\xfe"), "XmlSyntaxError"),
    "declared gbk, sent utf-8 garbage": (b'<?xml version="1.0" encoding="GBK"?>' + envelope(GET)[:20] + b"\x81",
                                         "XmlSyntaxError"),
    "oversized": (envelope(f"<v:Ping><v:request><v:Echo>{'x' * 70000}</v:Echo></v:request></v:Ping>"),
                  "RequestTooLarge"),
    "empty body": (b"", "XmlSyntaxError"),
    "soap 1.2 envelope": (envelope(GET).replace(SOAP_ENV.encode(), b"http://www.w3.org/2003/05/soap-envelope"),
                          "VersionMismatch"),
}
SOAP_DEFINED = {"VersionMismatch", "MustUnderstand"}  # SOAP 1.1's own codes, not Client.*


@pytest.mark.parametrize("case", CORPUS)
def test_hostile_payload_gets_a_fault(base_url, his, case):
    payload, code = CORPUS[case]
    answer = requests.post(f"{base_url}/ws/his", data=payload, timeout=30,
                           headers={"Content-Type": "text/xml; charset=utf-8"})
    assert answer.status_code == 500
    assert answer.headers["Content-Type"].startswith("text/xml")
    fault = etree.fromstring(answer.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None
    faultcode = fault.findtext("faultcode")
    expected = f"soap11env:{code}" if code in SOAP_DEFINED else f"soap11env:Client.{code}"
    assert faultcode == expected, (case, faultcode, fault.findtext("faultstring"))
    assert b"Traceback" not in answer.content and b"/etc/passwd" not in answer.content.replace(b"GET", b"")
    assert PATIENT not in fault.findtext("faultstring")
    assert his.Ping().ServiceVersion  # still serving


def test_no_patient_text_in_the_log(server, base_url, his):
    for payload, _ in CORPUS.values():
        requests.post(f"{base_url}/ws/his", data=payload, timeout=30, headers={"Content-Type": "text/xml"})
    invalid = envelope(f"<v:SubmitApplication><v:request><v:Patient><v:Name>{PATIENT}</v:Name></v:Patient>"
                       "</v:request></v:SubmitApplication>")
    requests.post(f"{base_url}/ws/his", data=invalid, timeout=30, headers={"Content-Type": "text/xml"})
    his.Ping()  # the log line of the last call is written before this answer
    log = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "SubmitApplication" in log  # the calls were logged ...
    assert PATIENT not in log and "小明" not in log  # ... without the patient
