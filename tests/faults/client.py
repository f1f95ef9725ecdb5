"""A light SOAP client for load: hand-written envelopes, one requests session a thread."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import requests
from lxml import etree

from tests.soap.conftest import HIS_PASSWORD, HIS_USER, PACS_PASSWORD, PACS_USER, TNS, security_header

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ITEM = ("<v:ApplicationItem><v:ItemCode>CT001</v:ItemCode><v:ItemName>头颅CT</v:ItemName>"
        "<v:Quantity>1</v:Quantity><v:UnitPrice>150.00</v:UnitPrice></v:ApplicationItem>")


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def envelope(operation: str, fields: str, *, pacs: bool = False) -> bytes:
    header = security_header(PACS_USER, PACS_PASSWORD) if pacs else security_header(HIS_USER, HIS_PASSWORD)
    return (f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:v="{TNS}">{header}<soapenv:Body>'
            f"<v:{operation}><v:request>{fields}</v:request></v:{operation}></soapenv:Body></soapenv:Envelope>"
            ).encode()


def submit(no: str, message_id: str, patient_id: str = "P-FAULTS") -> bytes:
    return envelope("SubmitApplication", f"""<v:MessageId>{message_id}</v:MessageId><v:ApplicationNo>{no}</v:ApplicationNo>
<v:Patient><v:PatientId>{patient_id}</v:PatientId><v:Name>小明</v:Name><v:Sex>M</v:Sex></v:Patient>
<v:Visit><v:VisitNo>V-{no}</v:VisitNo><v:PatientType>OUTPATIENT</v:PatientType></v:Visit>
<v:OrderingDoctor><v:Code>D1</v:Code><v:Name>王医生</v:Name></v:OrderingDoctor>
<v:OrderingDepartmentCode>NK</v:OrderingDepartmentCode><v:ExecutingDepartmentCode>CT</v:ExecutingDepartmentCode>
<v:OrderedAt>2026-11-26T09:00:00</v:OrderedAt><v:Items>{ITEM}</v:Items>""")


def pay(no: str, message_id: str) -> bytes:
    return envelope("ConfirmPayment", f"<v:MessageId>{message_id}</v:MessageId><v:ApplicationNo>{no}</v:ApplicationNo>"
                                      "<v:Amount>150.00</v:Amount><v:PaidAt>2026-11-26T09:05:00</v:PaidAt>")


def get(no: str) -> bytes:
    return envelope("GetApplication", f"<v:ApplicationNo>{no}</v:ApplicationNo>")


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer (connection dropped, timed out)
    fault: str | None  # the contract code, None for success
    seconds: float
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.fault is None


def call(session: requests.Session, url: str, body: bytes, path: str = "/ws/his", timeout: float = 30) -> Answer:
    import time

    started = time.monotonic()
    try:
        response = session.post(url + path, data=body, timeout=timeout,
                                headers={"Content-Type": "text/xml; charset=utf-8"})
    except requests.RequestException:
        return Answer(None, None, time.monotonic() - started)
    seconds = time.monotonic() - started
    fault = None
    if response.status_code != 200:
        try:
            node = etree.fromstring(response.content).find(f".//{{{TNS}}}ServiceFault/{{{TNS}}}Code")
            fault = node.text if node is not None else "?"
        except etree.XMLSyntaxError:
            fault = "not-xml"
    return Answer(response.status_code, fault, seconds, response.content)
