"""WSDL documents of both services, and the checked-in snapshots under wsdl/."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from his_pacs_ws.soap.app import WSDL_PLACEHOLDER, wsdl_template

SNAPSHOT_NAMES = {"/ws/his": "his.wsdl", "/ws/pacs": "pacs.wsdl",
                  "/ws/his-callback": "his-callback.wsdl", "/ws/pacs-callback": "pacs-callback.wsdl"}


def wsdl_document(path: str, base_url: str) -> bytes:
    return wsdl_template(path).replace(WSDL_PLACEHOLDER.encode(), base_url.encode())


XS = "http://www.w3.org/2001/XMLSchema"
_KIND_ORDER = {f"{{{XS}}}{kind}": i for i, kind in enumerate(("import", "simpleType", "complexType", "element"))}


def pretty(document: bytes) -> bytes:
    """Indented, schema components sorted by kind and name (spyne emits them in an order
    that varies between processes), so that a change to the contract reads as a small diff."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(document, parser)
    for schema in root.iter(f"{{{XS}}}schema"):
        children = sorted(schema, key=lambda c: (_KIND_ORDER.get(c.tag, 9), c.get("name") or c.get("namespace") or ""))
        schema[:] = children
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def write_snapshots(out: Path, base_url: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, name in SNAPSHOT_NAMES.items():
        target = out / name
        target.write_bytes(pretty(wsdl_document(path, base_url)))
        written.append(target)
    return written
