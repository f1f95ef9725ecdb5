"""Requests read straight from the XML (convert.plain_request) equal what spyne's own
deserializer and to_plain make of them, for every kind of value; anything unusual is left
to spyne."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings, strategies as st

import his_pacs_ws.soap.compat  # noqa: F401  (spyne on Python 3.12+)
from lxml import etree
from spyne import MethodContext

from his_pacs_ws.config import Settings
from his_pacs_ws.services.context import Context
from his_pacs_ws.soap.convert import _Unusual, plain_from_element, to_plain
from his_pacs_ws.soap.protocol import PARSER_OPTIONS, make_endpoint
from his_pacs_ws.soap.services import HisService, PacsService

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import loadgen  # noqa: E402  (the load generator's requests: the common shapes)

NS = "urn:his-pacs-ws:v1"
TZ = Settings().tz
ENDPOINTS = {service: make_endpoint(service, Context(Settings())) for service in (HisService, PacsService)}


def both_ways(service, operation: str, body: str):
    """(direct, spyne) plain data of one operation element, after schema validation."""
    endpoint = ENDPOINTS[service]
    protocol = endpoint.app.in_protocol
    element = etree.fromstring(f'<v:x xmlns:v="{NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                               f"{body}</v:x>", etree.XMLParser(**PARSER_OPTIONS))[0]
    assert protocol.validation_schema.validate(element), protocol.validation_schema.error_log
    cls = service.public_methods[operation].in_message
    ctx = MethodContext(endpoint, MethodContext.SERVER)
    spyne = to_plain(protocol.from_element(ctx, cls, element), cls, TZ)
    return plain_from_element(protocol, ctx, cls, element, TZ), spyne


SAMPLES = [
    (HisService, "SubmitApplication", loadgen.SUBMIT, {"ptype": "OUTPATIENT", "ward": "", "dept": "CT"}),
    (HisService, "SubmitApplication", loadgen.SUBMIT, {"ptype": "INPATIENT", "ward": loadgen.INPATIENT_WARD,
                                                       "dept": "MR"}),
    (HisService, "ConfirmPayment", loadgen.PAY, {}),
    (HisService, "SendInpatientOrder", loadgen.SEND, {}),
    (PacsService, "QueryApplications", loadgen.WORKLIST, {"dept": "CT"}),
    (PacsService, "ReportStatus", loadgen.STATUS, {"status": "REGISTERED", "at": "2026-11-26T09:20:00Z",
                                                   "extra": "<v:AccessionNo>X1</v:AccessionNo><v:Room>CT1</v:Room>"}),
    (PacsService, "ReportStatus", loadgen.STATUS, {"status": "EXAMINED", "at": "2026-11-26T09:30:00.123456",
                                                   "extra": "<v:Note>  两端有空格  </v:Note>"}),
    (PacsService, "PushReport", loadgen.REPORT, {}),
    (HisService, "QueryReports", loadgen.READ_REPORTS, {}),
    (PacsService, "RaiseCriticalValue", loadgen.RAISE, {}),
    (HisService, "AcknowledgeCriticalValue", loadgen.ACK, {}),
    (HisService, "RecordCriticalValueHandling", loadgen.HANDLE, {}),
]


@pytest.mark.parametrize("service, operation, template, values", SAMPLES,
                         ids=[f"{s[1]}-{i}" for i, s in enumerate(SAMPLES)])
def test_the_common_requests_read_alike(service, operation, template, values):
    body = template.format(m="M1", a="A1", p="P1", **values).replace("{a}", "A1")
    direct, spyne = both_ways(service, operation, body)
    assert direct == spyne
    assert direct["request"]  # the request was read, not dropped


PACKAGE = ("<v:ApplicationItem><v:ItemCode>PKG</v:ItemCode><v:ItemName>组合</v:ItemName><v:Quantity>1</v:Quantity>"
           "<v:UnitPrice>0</v:UnitPrice><v:Components><v:ApplicationItem><v:ItemCode>A</v:ItemCode>"
           "<v:ItemName>甲</v:ItemName><v:Quantity>2.5</v:Quantity><v:UnitPrice>10.10</v:UnitPrice>"
           "</v:ApplicationItem><v:ApplicationItem><v:ItemCode>B</v:ItemCode><v:ItemName>乙</v:ItemName>"
           "<v:Quantity>1</v:Quantity><v:UnitPrice>0.01</v:UnitPrice></v:ApplicationItem></v:Components>"
           "</v:ApplicationItem>")


def _submit(name="小明", price="150.00", ordered="2026-11-26T09:00:00+08:00", items=None, extra="") -> str:
    body = loadgen.SUBMIT.format(m="M1", a="A1", p="P1", ptype="OUTPATIENT", ward="", dept="CT")
    body = body.replace("<v:Name>小明</v:Name>", f"<v:Name>{escape(name)}</v:Name>")
    body = body.replace("<v:UnitPrice>150.00</v:UnitPrice>", f"<v:UnitPrice>{price}</v:UnitPrice>")
    body = body.replace("2026-11-26T09:00:00+08:00", ordered)
    if items is not None:
        start, end = body.index("<v:Items>") + len("<v:Items>"), body.index("</v:Items>")
        body = body[:start] + items + body[end:]
    return body.replace("</v:request>", extra + "</v:request>")


@pytest.mark.parametrize("body", [
    _submit(items=PACKAGE),
    _submit(items=""),  # an empty list (the use case refuses it, the reading keeps it)
    _submit(extra="<v:ClinicalHistory></v:ClinicalHistory><v:Priority>URGENT</v:Priority>"),
    _submit(ordered="2026-11-26T09:00:00"),  # no offset: the hospital's time
    _submit(ordered="1901-01-01T08:00:00+08:00"),
    _submit(price="  7.5  "),
    _submit(name="<&>\"'"),
], ids=["package", "empty-list", "empty-string", "naive-time", "first-year", "spaced-decimal", "markup"])
def test_edge_values_read_alike(body):
    direct, spyne = both_ways(HisService, "SubmitApplication", body)
    assert direct == spyne


zones = st.sampled_from(["", "Z", "+08:00", "-05:30", "+14:00"])


@settings(max_examples=150, deadline=None)
@given(name=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40),
       price=st.decimals(min_value=Decimal("0"), max_value=Decimal("99999.99"), places=2),
       when=st.datetimes(min_value=datetime(1902, 1, 1), max_value=datetime(9997, 12, 31)),
       zone=zones)
def test_generated_requests_read_alike(name, price, when, zone):
    ordered = when.replace(microsecond=0).isoformat() + zone
    direct, spyne = both_ways(HisService, "SubmitApplication", _submit(name=name, price=str(price), ordered=ordered))
    assert direct == spyne
    assert direct["request"]["items"][0]["unit_price"] == price


@pytest.mark.parametrize("extra, why", [
    ('<v:ClinicalHistory xsi:nil="false">x</v:ClinicalHistory>', "an attribute"),
])
def test_unusual_requests_are_left_to_spyne(extra, why):
    body = _submit(extra=extra)
    endpoint = ENDPOINTS[HisService]
    element = etree.fromstring(f'<v:x xmlns:v="{NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                               f"{body}</v:x>", etree.XMLParser(**PARSER_OPTIONS))[0]
    ctx = MethodContext(endpoint, MethodContext.SERVER)
    with pytest.raises(_Unusual):
        plain_from_element(endpoint.app.in_protocol, ctx, HisService.public_methods["SubmitApplication"].in_message,
                           element, TZ)


def test_a_date_to_plain_refuses_is_left_to_spyne():
    """1901-01-01T00:00:00+14:00 is 1900 in the hospital's time: to_plain refuses it, with
    its message; the direct reader hands it over rather than answering differently."""
    body = _submit(ordered="1901-01-01T00:00:00+14:00")
    endpoint = ENDPOINTS[HisService]
    element = etree.fromstring(f'<v:x xmlns:v="{NS}">{body}</v:x>', etree.XMLParser(**PARSER_OPTIONS))[0]
    ctx = MethodContext(endpoint, MethodContext.SERVER)
    with pytest.raises(_Unusual):
        plain_from_element(endpoint.app.in_protocol, ctx, HisService.public_methods["SubmitApplication"].in_message,
                           element, timezone(timedelta(hours=8)))
