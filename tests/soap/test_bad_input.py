"""Bad input gets a clear SOAP fault with a stable code, and nothing is stored."""

from __future__ import annotations

import re

import pytest
import requests
from lxml import etree
from sqlalchemy import select

from his_pacs_ws.db.models import CallRecord
from tests.soap.conftest import PACS_PASSWORD, PACS_USER, TNS, security_header, unique

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
ITEM = ("<v1:ApplicationItem><v1:ItemCode>CT001</v1:ItemCode><v1:ItemName>头颅CT</v1:ItemName>"
        "<v1:Quantity>1</v1:Quantity><v1:UnitPrice>{price}</v1:UnitPrice></v1:ApplicationItem>")


def submit_envelope(no, *, sex="M", name="张三丰", price="150.00", items=None, extra="", patient_type="OUTPATIENT",
                    patient=True, ordered_at="2026-11-26T09:00:00", patient_extra="", visit_extra=""):
    items = ITEM.format(price=price) if items is None else items
    patient_xml = (f"<v1:Patient><v1:PatientId>{unique('P')}</v1:PatientId><v1:Name>{name}</v1:Name>"
                   f"<v1:Sex>{sex}</v1:Sex>{patient_extra}</v1:Patient>") if patient else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:v1="{TNS}">{security_header()}<soapenv:Body>
<v1:SubmitApplication><v1:request>
<v1:MessageId>{unique('M')}</v1:MessageId><v1:ApplicationNo>{no}</v1:ApplicationNo>
{patient_xml}
<v1:Visit><v1:VisitNo>{unique('V')}</v1:VisitNo><v1:PatientType>{patient_type}</v1:PatientType>{visit_extra}</v1:Visit>
<v1:OrderingDoctor><v1:Code>D1</v1:Code><v1:Name>王医生</v1:Name></v1:OrderingDoctor>
<v1:OrderingDepartmentCode>NK</v1:OrderingDepartmentCode><v1:ExecutingDepartmentCode>CT</v1:ExecutingDepartmentCode>
<v1:OrderedAt>{ordered_at}</v1:OrderedAt>
<v1:Items>{items}</v1:Items>{extra}
</v1:request></v1:SubmitApplication></soapenv:Body></soapenv:Envelope>""".encode()


def post(base_url, body: bytes, path="/ws/his"):
    return requests.post(base_url + path, data=body, timeout=10,
                         headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "SubmitApplication"})


def parse_fault(response) -> dict:
    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, response.content[:300]
    detail = fault.find(f"detail/{{{TNS}}}ServiceFault")
    return {
        "faultcode": fault.findtext("faultcode"),
        "faultstring": fault.findtext("faultstring"),
        "code": detail.findtext(f"{{{TNS}}}Code"),
    }


def assert_not_stored(his, no):
    from zeep.exceptions import Fault

    with pytest.raises(Fault) as missing:
        his.GetApplication(request={"ApplicationNo": no})
    assert missing.value.code.endswith("ApplicationNotFound")


CASES = {
    "missing required Patient": dict(patient=False),
    "money with three fraction digits": dict(price="150.001"),
    "negative money": dict(price="-1.00"),
    "unknown enumeration value": dict(sex="X"),
    "unknown patient type": dict(patient_type="VIP"),
    "no items": dict(items=""),
    "unknown element": dict(extra="<v1:Discount>10</v1:Discount>"),
    "name longer than the schema allows": dict(name="张三丰" * 40),
    "phone longer than the schema allows": dict(patient_extra="<v1:Phone>" + "1" * 40 + "</v1:Phone>"),
    "hour 24": dict(ordered_at="2024-05-01T24:00:00"),
    ".NET DateTime.MinValue": dict(ordered_at="0001-01-01T00:00:00"),
    "a visit before 1901": dict(visit_extra="<v1:VisitAt>1900-01-01T00:00:00</v1:VisitAt>"),
    "a line amount beyond the ledger": dict(items=ITEM.format(price="999999999999.99").replace(
        "<v1:Quantity>1</v1:Quantity>", "<v1:Quantity>99999999999.999</v1:Quantity>")),
    "a birth date with an apostrophe": dict(patient_extra="<v1:BirthDate>1990-01-01'张三丰</v1:BirthDate>"),
    "an enumeration value with an apostrophe": dict(sex="It's 张三丰"),
}


@pytest.mark.parametrize("case", CASES)
def test_schema_invalid_request(base_url, his, case):
    no = unique("A")
    fault = parse_fault(post(base_url, submit_envelope(no, **CASES[case])))
    assert fault["faultcode"] == "soap11env:Client.SchemaValidationError"
    assert fault["code"] == "SchemaValidationError"
    assert "张三丰" not in fault["faultstring"]
    assert_not_stored(his, no)


@pytest.mark.parametrize("body, code", [
    (b"this is not xml", "XmlSyntaxError"),
    (b"<?xml version='1.0'?><soapenv:Envelope xmlns:soapenv='" + SOAP_ENV.encode() + b"'><soapenv:Body>",
     "XmlSyntaxError"),
    (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>", "DTDNotAllowed"),
    (b"<x>" + b"a" * 70000 + b"</x>", "RequestTooLarge"),
    ("<?xml version='1.0' encoding='UTF-16'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>".encode("utf-16"),
     "DTDNotAllowed"),
    (b"<a>" * 300 + b"</a>" * 300, "XmlSyntaxError"),
    (b"<?xml version='1.0' encoding='UTF-8'?><x>\xff\xfe</x>", "XmlSyntaxError"),
])
def test_malformed_request(base_url, his, body, code):
    fault = parse_fault(post(base_url, body))
    assert fault["code"] == code
    assert fault["faultcode"] == f"soap11env:Client.{code}"
    assert his.Ping().ServiceVersion  # the service keeps serving


def test_unknown_operation(base_url):
    body = f"""<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:v1="{TNS}">{security_header()}<soapenv:Body>
    <v1:DropAllTables><v1:request/></v1:DropAllTables></soapenv:Body></soapenv:Envelope>""".encode()
    fault = parse_fault(post(base_url, body))
    assert fault["faultcode"].startswith("soap11env:Client.")


def test_a_valid_envelope_to_the_wrong_service(base_url, his):
    no = unique("A")
    body = submit_envelope(no).replace(security_header().encode(), security_header(PACS_USER, PACS_PASSWORD).encode())
    fault = parse_fault(post(base_url, body, path="/ws/pacs"))
    assert fault["faultcode"].startswith("soap11env:Client.")
    assert_not_stored(his, no)


def test_faults_are_recorded(base_url, engine):
    no = unique("A")
    parse_fault(post(base_url, submit_envelope(no, price="1.001")))
    ok = unique("A")
    assert post(base_url, submit_envelope(ok)).status_code == 200
    with engine.connect() as conn:
        rows = conn.execute(select(CallRecord.operation, CallRecord.outcome, CallRecord.fault_code,
                                   CallRecord.application_no, CallRecord.caller)
                            .where(CallRecord.service == "HIS").order_by(CallRecord.id.desc()).limit(2)).all()
    assert rows[0] == ("SubmitApplication", "OK", None, ok, "his-test")
    # refused by the schema before any operation ran, and still recorded with its keys
    assert rows[1] == ("SubmitApplication", "FAULT", "SchemaValidationError", no, "his-test")


@pytest.mark.parametrize("size", ["0", "501", "many"])
def test_page_size_out_of_range(base_url, size):
    body = f"""<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:v1="{TNS}">{security_header(PACS_USER, PACS_PASSWORD)}<soapenv:Body>
    <v1:QueryApplications><v1:request><v1:PageSize>{size}</v1:PageSize></v1:request></v1:QueryApplications>
    </soapenv:Body></soapenv:Envelope>""".encode()
    fault = parse_fault(post(base_url, body, path="/ws/pacs"))
    assert fault["code"] == "SchemaValidationError"
    assert "PageSize" in fault["faultstring"]


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00", "0001-01-01T00:00:00+08:00", "2024-05-01T24:00:00"])
def test_an_unreadable_date_time_names_its_element_and_keeps_the_call_keys(base_url, his, engine, value):
    """.NET sends DateTime.MinValue for a DateTime never set: the fault says which one, and
    the call record keeps the MessageId and ApplicationNo to find the call by."""
    no = unique("A")
    body = submit_envelope(no, ordered_at=value)
    message_id = re.search(rb"<v1:MessageId>([^<]+)<", body).group(1).decode()
    fault = parse_fault(post(base_url, body))
    assert fault["code"] == "SchemaValidationError"
    assert fault["faultstring"].startswith("Element 'OrderedAt': "), fault["faultstring"]
    assert_not_stored(his, no)
    with engine.connect() as conn:
        record = conn.execute(select(CallRecord.operation, CallRecord.message_id, CallRecord.application_no)
                              .where(CallRecord.application_no == no, CallRecord.operation == "SubmitApplication")).one()
    assert record == ("SubmitApplication", message_id, no)


def test_a_birth_date_never_set_is_refused_by_name(base_url, his):
    no = unique("A")
    fault = parse_fault(post(base_url, submit_envelope(no, patient_extra="<v1:BirthDate>0001-01-01</v1:BirthDate>")))
    assert fault["code"] == "SchemaValidationError"
    assert fault["faultstring"].startswith("Element 'BirthDate': ") and "DateTime.MinValue" in fault["faultstring"]
    assert_not_stored(his, no)
