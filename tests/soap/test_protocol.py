"""SOAP 1.1 and HTTP at the door: envelopes that are not one SOAP 1.1 call, bodies their
charset cannot decode, and malformed HTTP framing all get a SOAP fault envelope with a
stable code (never gunicorn's HTML page), and the service keeps serving."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
import requests
from lxml import etree

from tests.soap.conftest import TNS, security_header, unique

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
PING = "<v:Ping><v:request/></v:Ping>"


def envelope(body: str = PING, *, header: str | None = None, ns: str = SOAP_ENV, inside: str | None = None) -> bytes:
    inside = f"<soapenv:Body>{body}</soapenv:Body>" if inside is None else inside
    return (f'<soapenv:Envelope xmlns:soapenv="{ns}" xmlns:v="{TNS}">'
            f'{security_header() if header is None else header}{inside}</soapenv:Envelope>').encode()


def header_with(extra: str) -> str:
    return security_header().replace("</soapenv:Header>", extra + "</soapenv:Header>")


def fault_of(answer) -> tuple[str, str]:
    assert answer.headers["Content-Type"].startswith("text/xml"), answer.content[:200]
    node = etree.fromstring(answer.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert node is not None, answer.content[:300]
    code = node.find(f"detail/{{{TNS}}}ServiceFault/{{{TNS}}}Code")
    return node.findtext("faultcode"), code.text if code is not None else None


def post(base_url, body: bytes, content_type: str | None = "text/xml; charset=utf-8"):
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(f"{base_url}/ws/his", data=body, headers=headers, timeout=10)


ENVELOPES = {
    "an empty Body": (envelope(""), "soap11env:Client.SchemaValidationError"),
    "no Body": (envelope(inside=""), "soap11env:Client.SchemaValidationError"),
    "the operation outside the Body": (envelope(inside=PING + "<soapenv:Body/>"),
                                       "soap11env:Client.SchemaValidationError"),
    "the operation after the Body": (envelope(inside="<soapenv:Body/>" + PING),
                                     "soap11env:Client.SchemaValidationError"),
    "two operations": (envelope(PING + PING), "soap11env:Client.SchemaValidationError"),
    "only text in the Body": (envelope("hello"), "soap11env:Client.SchemaValidationError"),
    "not an Envelope": (f'<v:Ping xmlns:v="{TNS}"/>'.encode(), "soap11env:Client.SchemaValidationError"),
    "a SOAP 1.2 envelope": (envelope(ns=SOAP12_ENV, header=security_header().replace(SOAP_ENV, SOAP12_ENV)),
                            "soap11env:VersionMismatch"),
    "an unknown header with mustUnderstand=1": (
        envelope(header=header_with('<x:Trace xmlns:x="urn:x" soapenv:mustUnderstand="1">1</x:Trace>')),
        "soap11env:MustUnderstand"),
}


@pytest.mark.parametrize("case", ENVELOPES)
def test_an_envelope_that_is_not_one_soap11_call(base_url, his, case):
    body, expected = ENVELOPES[case]
    answer = post(base_url, body)
    assert answer.status_code == 500
    faultcode, code = fault_of(answer)
    assert faultcode == expected, case
    assert code == expected.split(":")[1].rsplit(".", 1)[-1]
    assert his.Ping().ServiceVersion


def test_headers_that_need_no_understanding_are_accepted(base_url):
    ignored = header_with('<x:Trace xmlns:x="urn:x">1</x:Trace>'
                          '<x:Other xmlns:x="urn:x" soapenv:mustUnderstand="0">1</x:Other>'
                          '<x:Elsewhere xmlns:x="urn:x" soapenv:mustUnderstand="1" '
                          'soapenv:actor="urn:some-other-node">1</x:Elsewhere>')
    assert post(base_url, envelope(header=ignored)).status_code == 200
    understood = security_header().replace("<wsse:Security ", '<wsse:Security soapenv:mustUnderstand="1" ')
    assert post(base_url, envelope(header=understood)).status_code == 200


GET = "<v:GetApplication><v:request><v:ApplicationNo>张三</v:ApplicationNo></v:request></v:GetApplication>"


@pytest.mark.parametrize("body, content_type, expected", [
    (b'<?xml version="1.0" encoding="GB18030"?>' + envelope(GET).decode().encode("gb18030"),
     "text/xml; charset=utf-8", "XmlSyntaxError"),
    (envelope(GET).decode().encode("gb18030"), "text/xml; charset=utf-8", "XmlSyntaxError"),
    (envelope(), "text/xml; charset=klingon", "XmlSyntaxError"),
    (b'<?xml version="1.0" encoding="UTF-8"?>' + envelope(), "text/xml; charset=gbk", "XmlSyntaxError"),
    (envelope(), "application/json", "UnsupportedMediaType"),
    (b'{"Ping": {}}', "application/json", "UnsupportedMediaType"),
    (envelope(), "application/x-www-form-urlencoded", "UnsupportedMediaType"),
])
def test_a_body_its_content_type_cannot_describe(base_url, his, body, content_type, expected):
    answer = post(base_url, body, content_type)
    assert answer.status_code == 500
    assert fault_of(answer) == (f"soap11env:Client.{expected}", expected)
    assert his.Ping().ServiceVersion


def test_a_charset_that_decodes_the_body_is_honoured(base_url, his):
    no = unique("A")
    body = envelope(GET.replace("张三", no)).decode()
    for encoded, content_type in [(body.encode("gb18030"), "text/xml; charset=GB18030"),
                                  (body.encode("utf-16"), "text/xml; charset=utf-16"),
                                  (b'<?xml version="1.0" encoding="GBK"?>' + body.encode("gbk"), "text/xml; charset=gbk"),
                                  (body.encode(), "application/soap+xml; charset=utf-8")]:
        answer = post(base_url, encoded, content_type)
        assert fault_of(answer) == ("soap11env:Client.ApplicationNotFound", "ApplicationNotFound"), content_type


def test_a_post_without_content_type_is_handled(base_url):
    answer = post(base_url, envelope(), content_type=None)
    assert answer.status_code == 200 and b"PingResponse" in answer.content


def raw_exchange(base_url: str, request: bytes) -> bytes:
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def request_head(*headers: str) -> bytes:
    return ("POST /ws/his HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; charset=utf-8\r\n"
            + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


FRAMING = {
    "a bad chunk size": request_head("Transfer-Encoding: chunked") + b"zz\r\n" + envelope() + b"\r\n0\r\n\r\n",
    "chunked and Content-Length": (request_head("Transfer-Encoding: chunked", "Content-Length: 5")
                                   + b"5\r\n<a/>x\r\n0\r\n\r\n"),
    "gzip transfer encoding": request_head("Transfer-Encoding: gzip", "Content-Length: 4") + b"<a/>",
    "gzip then chunked": request_head("Transfer-Encoding: gzip, chunked") + b"4\r\n<a/>\r\n0\r\n\r\n",
    "a negative Content-Length": request_head("Content-Length: -1") + envelope(),
    "two Content-Lengths": request_head("Content-Length: 3", "Content-Length: 4") + b"<a/>",
    "a header without a colon": request_head("NoColonHere") + envelope(),
}


@pytest.mark.parametrize("case", FRAMING)
def test_malformed_http_gets_a_soap_fault_not_html(base_url, his, case):
    answer = raw_exchange(base_url, FRAMING[case])
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert 400 <= status < 600, head
    assert b"Content-Type: text/xml" in head, head
    assert b"<html" not in body.lower()
    node = etree.fromstring(body).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert node.findtext("faultcode") == "soap11env:Client.BadHttpRequest", body
    assert his.Ping().ServiceVersion
