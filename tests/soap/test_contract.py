"""The WSDL is the contract: served as checked in, shaped for every SOAP stack."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import requests
from lxml import etree

from tests.soap.conftest import TNS, WSDL

XS = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
# The services we serve, and the callback services partners implement (push mode)
ALL = ("his", "pacs", "his-callback", "pacs-callback")


SNAPSHOT_ADDRESS = b"http://localhost:8000"


def test_served_wsdl_is_the_snapshot_with_its_own_address(base_url):
    """Byte for byte, from every worker: only the address differs."""
    for name in ALL:
        snapshot = (WSDL / f"{name}.wsdl").read_bytes()
        served = {requests.get(f"{base_url}/ws/{name}?wsdl", timeout=10).content for _ in range(8)}
        assert len(served) == 1, "workers serve different documents"
        [document] = served
        assert document.replace(base_url.encode(), SNAPSHOT_ADDRESS) == snapshot, (
            f"wsdl/{name}.wsdl is stale: run `make wsdl`")


def test_snapshots_match_the_code():
    from his_pacs_ws.soap.wsdl import wsdl_document

    for name in ALL:
        assert wsdl_document(f"/ws/{name}", SNAPSHOT_ADDRESS.decode()) == (WSDL / f"{name}.wsdl").read_bytes()


def test_every_process_writes_the_same_wsdl():
    """spyne orders schema components by hash: different per process unless put in order."""
    script = ("import hashlib, sys; from his_pacs_ws.soap.wsdl import wsdl_document; "
              f"sys.stdout.write(hashlib.sha256(b''.join(wsdl_document('/ws/' + n, 'http://x') for n in {ALL!r}))"
              ".hexdigest())")
    digests = {
        subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": str(seed)},
                       capture_output=True, text=True, check=True, timeout=120).stdout
        for seed in (1, 2, 3)
    }
    assert len(digests) == 1, digests


def test_wsdl_has_an_etag_and_answers_not_modified(base_url):
    first = requests.get(f"{base_url}/ws/his?wsdl", timeout=10)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
    again = requests.get(f"{base_url}/ws/his?wsdl", headers={"If-None-Match": etag}, timeout=10)
    assert (again.status_code, again.content, again.headers["ETag"]) == (304, b"", etag)
    other = requests.get(f"{base_url}/ws/pacs?wsdl", headers={"If-None-Match": etag}, timeout=10)
    assert other.status_code == 200 and other.headers["ETag"] != etag
    moved = requests.get(f"{base_url}/ws/his?wsdl", headers={"If-None-Match": etag, "Host": "elsewhere:1"},
                         timeout=10)
    assert moved.status_code == 200, "another address is another document"


def test_wsdl_is_indented():
    for name in ALL:
        lines = (WSDL / f"{name}.wsdl").read_bytes().splitlines()
        assert len(lines) > 300 and max(map(len, lines)) < 1000
        assert any(line.startswith(b"      <xs:complexType ") for line in lines)


def test_every_operation_and_type_is_documented_in_chinese_and_english():
    def bilingual(text):
        return bool(text) and re.search(r"[\u4e00-\u9fff]", text) and re.search(r"[A-Za-z]{3,}", text)

    for name in ALL:
        doc = schema_of(name)
        operations = doc.xpath("//wsdl:portType/wsdl:operation", namespaces={"wsdl": WSDL_NS})
        for op in operations:
            assert bilingual(op.findtext(f"{{{WSDL_NS}}}documentation")), op.get("name")
        types = doc.xpath("//xs:schema/xs:simpleType | //xs:schema/xs:complexType", namespaces={"xs": XS})
        assert len(types) > 30
        for node in types:
            assert bilingual(node.findtext(f"{{{XS}}}annotation/{{{XS}}}documentation")), node.get("name")


def test_operation_parts_are_named_parameters_for_dotnet():
    """ASMX and WCF import an operation as wrapped only when its part is named parameters."""
    for name in ALL:
        doc = schema_of(name)
        ns = {"wsdl": WSDL_NS}
        for op in doc.xpath("//wsdl:portType/wsdl:operation", namespaces=ns):
            assert op.get("parameterOrder") == "parameters"
            for message in op.xpath("wsdl:input/@message | wsdl:output/@message", namespaces=ns):
                parts = doc.xpath(f"//wsdl:message[@name='{message.split(':')[1]}']/wsdl:part/@name", namespaces=ns)
                assert parts == ["parameters"], message


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


DOTNET_VALUE_TYPES = {"xs:boolean", "xs:dateTime", "xs:date", "xs:int", "xs:decimal"}


def optional_value_fields(name: str) -> dict[str, list[tuple[str, str | None]]]:
    """Per operation, the optional request fields .NET gives a value type (dates, numbers,
    booleans, enumerations), as paths, with their WSDL default."""
    doc = schema_of(name)
    ns = {"xs": XS, "wsdl": WSDL_NS}
    simple = {s.get("name"): s for s in doc.xpath("//xs:simpleType", namespaces=ns)}
    complex_ = {c.get("name"): c for c in doc.xpath("//xs:complexType", namespaces=ns)}

    def value_type(t: str) -> bool:
        if t in DOTNET_VALUE_TYPES:
            return True
        restriction = simple[t[4:]].find(f"{{{XS}}}restriction") if t[4:] in simple else None
        if restriction is None:
            return False
        return restriction.find(f"{{{XS}}}enumeration") is not None or value_type(restriction.get("base"))

    def walk(type_name, path, found, within=()):
        for element in complex_[type_name].findall(f"{{{XS}}}sequence/{{{XS}}}element"):
            t, here = element.get("type"), [*path, element.get("name")]
            if t.startswith("tns:") and t[4:] in complex_:
                if t[4:] not in within:  # a package's Components are ApplicationItems again
                    walk(t[4:], here, found, (*within, type_name))
            elif element.get("minOccurs") == "0" and element.get("maxOccurs") != "unbounded" and value_type(t):
                found.append(("/".join(here), element.get("default")))
        return found

    operations = doc.xpath("//wsdl:portType/wsdl:operation/@name", namespaces=ns)
    return {op: walk(f"{op}Request", [], []) for op in operations}


def test_the_guide_lists_every_optional_value_typed_request_field():
    """A .NET integrator who forgets a *Specified flag must find what that means."""
    guide = (WSDL.parent / "docs" / "INTEGRATING.md").read_text()
    table = [line for line in guide.splitlines() if line.startswith("| `")]
    rows = {(cells[1].strip(" `"), field.strip(" `"))
            for cells in (line.split("|") for line in table) for field in cells[2].split(",")}
    listed = set()
    for name in ("his", "pacs"):
        for op, fields in optional_value_fields(name).items():
            for path, _ in fields:
                assert (op, path) in rows, f"docs/INTEGRATING.md: no row for {op} {path}"
                listed.add((op, path))
    assert len(listed) >= 20


def test_the_wsdl_defaults_are_what_the_services_do():
    from his_pacs_ws.services.emr import DEFAULT_MAX_DOCUMENTS
    from his_pacs_ws.services.worklist import DEFAULT_PAGE_SIZE
    from his_pacs_ws.soap.typedocs import ELEMENT_DEFAULTS

    assert ELEMENT_DEFAULTS[("QueryApplicationsRequest", "PageSize")] == str(DEFAULT_PAGE_SIZE)
    assert ELEMENT_DEFAULTS[("QueryEmrRequest", "MaxDocuments")] == str(DEFAULT_MAX_DOCUMENTS)
    declared = {(op, path): default for name in ("his", "pacs")
                for op, fields in optional_value_fields(name).items() for path, default in fields if default}
    assert declared == {
        ("SubmitApplication", "Priority"): "ROUTINE", ("QueryReports", "IncludePrior"): "true",
        ("QueryReports", "IncludePreliminary"): "false", ("PublishEmr", "Documents/EmrDocument/Version"): "1",
        ("QueryCriticalValues", "OverdueOnly"): "false", ("QueryApplications", "PageSize"): "100",
        ("QueryEmr", "Scope"): "CURRENT_VISIT", ("QueryEmr", "IncludeOrders"): "false",
        ("QueryEmr", "MaxDocuments"): "200",
    }
