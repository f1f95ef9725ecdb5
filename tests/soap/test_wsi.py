"""A WS-I Basic Profile 1.1 self-check of both WSDLs: the rules foreign stacks rely on."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.soap.conftest import WSDL

NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap": "http://schemas.xmlsoap.org/wsdl/soap/",
    "soap12": "http://schemas.xmlsoap.org/wsdl/soap12/",
    "xs": "http://www.w3.org/2001/XMLSchema",
}
SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"


@pytest.fixture(params=["his", "pacs", "his-callback", "pacs-callback"])
def wsdl(request):
    return etree.parse(str(WSDL / f"{request.param}.wsdl")).getroot()


def xpath(node, path):
    return node.xpath(path, namespaces=NS)


def test_bindings_are_document_literal_soap11_over_http(wsdl):
    [binding] = xpath(wsdl, "wsdl:binding")
    [soap_binding] = xpath(binding, "soap:binding")
    assert soap_binding.get("style") == "document"  # R2705 one style per binding
    assert soap_binding.get("transport") == HTTP_TRANSPORT  # R2702
    assert not xpath(wsdl, "//soap12:*")  # one SOAP version
    bodies = xpath(binding, ".//soap:body")
    assert bodies and all(b.get("use") == "literal" for b in bodies)  # R2706
    assert all(b.get("namespace") is None for b in bodies)  # R2716 no namespace on doc/literal
    assert all(op.get("style") in (None, "document") for op in xpath(binding, ".//soap:operation"))


def test_no_soap_encoding_anywhere(wsdl):
    text = etree.tostring(wsdl).decode()
    assert "encodingStyle" not in text  # R1005-R1007
    assert not xpath(wsdl, "//@*[local-name()='arrayType']")  # R2110 no soapenc arrays
    assert not [r for r in xpath(wsdl, "//xs:restriction/@base | //xs:extension/@base | //xs:element/@type")
                if r.startswith("soapenc:") or SOAP_ENC in r]
    assert not xpath(wsdl, f"//xs:import[@namespace='{SOAP_ENC}']")


def test_one_part_per_message_referring_to_an_element(wsdl):
    for message in xpath(wsdl, "wsdl:message"):
        parts = xpath(message, "wsdl:part")
        assert len(parts) == 1, message.get("name")  # R2210 / wrapped style
        assert parts[0].get("element") and not parts[0].get("type")  # R2204


def test_wrapper_elements_are_named_after_operations(wsdl):
    elements = set(xpath(wsdl, "wsdl:types/xs:schema/xs:element/@name"))
    for operation in xpath(wsdl, "wsdl:portType/wsdl:operation"):
        name = operation.get("name")
        [inp] = xpath(operation, "wsdl:input/@message")
        [message] = xpath(wsdl, f"wsdl:message[@name='{inp.split(':')[1]}']")
        assert xpath(message, "wsdl:part/@element")[0] == f"tns:{name}"
        assert {name, f"{name}Response"} <= elements


def test_operation_signatures_are_unique(wsdl):
    """R2710: distinct wire signatures (the body's first child) per operation."""
    inputs = xpath(wsdl, "wsdl:message/wsdl:part[not(../@name='ServiceFault')]/@element")
    assert len(inputs) == len(set(inputs))


def test_soap_action_is_the_operation_name(wsdl):
    for operation in xpath(wsdl, "wsdl:binding/wsdl:operation"):
        [action] = xpath(operation, "soap:operation/@soapAction")
        assert action == operation.get("name")


def test_every_operation_declares_its_faults_in_port_type_and_binding(wsdl):
    for operation in xpath(wsdl, "wsdl:portType/wsdl:operation"):
        name = operation.get("name")
        assert xpath(operation, "wsdl:fault/@name") == ["ServiceFault"], name
        [bound] = xpath(wsdl, f"wsdl:binding/wsdl:operation[@name='{name}']")
        [soap_fault] = xpath(bound, "wsdl:fault/soap:fault")
        assert (soap_fault.get("name"), soap_fault.get("use")) == ("ServiceFault", "literal")  # R2754
    [fault_message] = xpath(wsdl, "wsdl:message[@name='ServiceFault']/wsdl:part/@element")
    assert fault_message == "tns:ServiceFault"  # R2205: fault parts are elements


def test_schema_is_qualified_and_self_contained(wsdl):
    [schema] = xpath(wsdl, "wsdl:types/xs:schema")
    assert schema.get("elementFormDefault") == "qualified"
    assert schema.get("targetNamespace") == "urn:his-pacs-ws:v1"
    assert not xpath(schema, "xs:import | xs:include")  # nothing to fetch elsewhere
    declared = set(xpath(schema, "xs:simpleType/@name | xs:complexType/@name"))
    used = {t.split(":", 1)[1] for t in xpath(schema, ".//@type | .//@base") if t.startswith("tns:")}
    assert used <= declared


def test_port_address_and_names(wsdl):
    [port] = xpath(wsdl, "wsdl:service/wsdl:port")
    [address] = xpath(port, "soap:address/@location")
    assert address.startswith("http")
    assert xpath(wsdl, "wsdl:service/@name")[0] in ("HisService", "PacsService", "HisCallbackService", "PacsCallbackService")
