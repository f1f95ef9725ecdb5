"""The WSDL is the contract: served as checked in, shaped for every SOAP stack."""

from __future__ import annotations

import re

import requests
from lxml import etree

from tests.soap.conftest import TNS, WSDL

XS = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
# The services we serve, and the callback services partners implement (push mode)
ALL = ("his", "pacs", "his-callback", "pacs-callback")


def normalized(document: bytes) -> bytes:
    """Pretty-printed, with the address the server puts in (it depends on the host)."""
    from his_pacs_ws.soap.wsdl import pretty

    return re.sub(rb'location="[^"]*"', b'location="-"', pretty(document))


def test_served_wsdl_matches_the_snapshot(base_url):
    for name in ALL:
        served = requests.get(f"{base_url}/ws/{name}?wsdl", timeout=10)
        assert served.status_code == 200
        assert normalized(served.content) == normalized((WSDL / f"{name}.wsdl").read_bytes()), (
            f"wsdl/{name}.wsdl is stale: run `his-pacs-ws wsdl --out wsdl`")


def test_snapshots_match_the_code():
    from his_pacs_ws.soap.wsdl import wsdl_document

    for name in ALL:
        path = f"/ws/{name}"
        assert normalized(wsdl_document(path, "http://x")) == normalized((WSDL / f"{name}.wsdl").read_bytes())


def schema_of(name):
    return etree.parse(str(WSDL / f"{name}.wsdl"))


def test_no_element_is_nillable():
    for name in ALL:
        assert schema_of(name).xpath("//xs:element[@nillable='true']", namespaces={"xs": XS}) == []


def test_every_operation_declares_the_service_fault():
    for name in ALL:
        doc = schema_of(name)
        operations = doc.xpath("//wsdl:portType/wsdl:operation", namespaces={"wsdl": WSDL_NS})
        assert operations
        for op in operations:
            faults = op.xpath("wsdl:fault/@message", namespaces={"wsdl": WSDL_NS})
            assert faults == ["tns:ServiceFault"], op.get("name")


def test_operations_are_the_contracts():
    def ops(name):
        return set(schema_of(name).xpath("//wsdl:portType/wsdl:operation/@name", namespaces={"wsdl": WSDL_NS}))

    assert {"SubmitApplication", "ConfirmPayment", "SendInpatientOrder", "CancelApplication",
            "GetApplication", "QueryCharges", "Ping"} <= ops("his")
    assert {"QueryApplications", "ReportStatus", "Charge", "Refund", "Ping"} <= ops("pacs")
    assert ops("his-callback") == {"ApplicationStatusChanged", "ReportPublished", "ChargesPosted",
                                   "CriticalValueRaised", "CriticalValueRevoked", "CriticalValueOverdue"}
    assert ops("pacs-callback") == {"ApplicationReleased", "ApplicationCancelled", "CriticalValueUpdated"}


def test_each_operation_takes_one_request_and_returns_its_result():
    doc = schema_of("his")
    ns = {"xs": XS}
    wrapper = doc.xpath("//xs:complexType[@name='SubmitApplication']//xs:element", namespaces=ns)
    assert [(e.get("name"), e.get("type")) for e in wrapper] == [("request", "tns:SubmitApplicationRequest")]
    response = doc.xpath("//xs:complexType[@name='SubmitApplicationResponse']//xs:element", namespaces=ns)
    assert [(e.get("name"), e.get("type")) for e in response] == [
        ("SubmitApplicationResult", "tns:SubmitApplicationResult")]


def test_money_and_quantities_are_bounded_decimals():
    doc = schema_of("his")
    ns = {"xs": XS}
    money = doc.xpath("//xs:simpleType[@name='Money']/xs:restriction", namespaces=ns)[0]
    assert money.get("base") == "xs:decimal"
    assert money.xpath("xs:fractionDigits/@value", namespaces=ns) == ["2"]
    quantity = doc.xpath("//xs:simpleType[@name='Quantity']/xs:restriction", namespaces=ns)[0]
    assert quantity.xpath("xs:fractionDigits/@value", namespaces=ns) == ["3"]
    assert not doc.xpath("//xs:element[@type='xs:float' or @type='xs:double']", namespaces=ns)


def test_lists_name_their_entries_by_type():
    doc = schema_of("pacs")
    ns = {"xs": XS}
    array = doc.xpath("//xs:complexType[@name='ApplicationItemArray']//xs:element", namespaces=ns)
    assert [e.get("name") for e in array] == ["ApplicationItem"]
    assert doc.getroot().get("targetNamespace") == TNS


def test_ping(his, pacs):
    for service in (his, pacs):
        result = service.Ping()
        assert result.ServiceVersion
        assert result.ServerTime.utcoffset() is not None


def test_every_type_is_named_once():
    """No anonymous per-field copies of a simple type (spyne's Parent_FieldType names):
    generated clients get one Money, one ApplicationStatus."""
    for name in ALL:
        names = schema_of(name).xpath("//xs:simpleType/@name | //xs:complexType/@name", namespaces={"xs": XS})
        assert not [n for n in names if n.endswith("Type") and "_" in n], names
        assert len(names) == len(set(names))


def test_callback_services_are_for_download_only(base_url):
    answer = requests.post(f"{base_url}/ws/his-callback", data=b"<x/>", timeout=10)
    assert answer.status_code == 405
    assert b"partners implement" in answer.content
