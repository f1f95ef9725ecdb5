"""WSDL documents: the shape every served WSDL is given, and the snapshots under wsdl/."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from his_pacs_ws.soap.typedocs import ELEMENT_DEFAULTS, TYPE_DOCS

SNAPSHOT_NAMES = {"/ws/his": "his.wsdl", "/ws/pacs": "pacs.wsdl",
                  "/ws/his-callback": "his-callback.wsdl", "/ws/pacs-callback": "pacs-callback.wsdl"}
SNAPSHOT_BASE_URL = "http://localhost:8000"

XS = "http://www.w3.org/2001/XMLSchema"
WSDL = "http://schemas.xmlsoap.org/wsdl/"
_KIND_ORDER = {f"{{{XS}}}{kind}": i for i, kind in enumerate(("import", "simpleType", "complexType", "element"))}
# Microsoft's importers (ASMX wsdl.exe, WCF svcutil) treat a document/literal operation as
# wrapped only when its one part is named so; the part name never appears on the wire.
WRAPPED_PART = "parameters"


def finish(doc) -> None:
    """spyne's ``wsdl_document_built`` hook: shape the WSDL in place before it is written.

    Message parts of operations are named ``parameters``; schema components are sorted by
    kind and name (spyne emits them in an order that varies between processes); named types
    carry their documentation and optional fields their defaults; the document is indented.
    Every process writes the same bytes.
    """
    root = doc.root_elt
    operations = _name_wrapped_parts(root)
    for schema in root.iter(f"{{{XS}}}schema"):
        schema[:] = sorted(schema, key=_schema_order)
        for node in schema.iterchildren(f"{{{XS}}}simpleType", f"{{{XS}}}complexType"):
            _document_type(node, operations)
            _declare_defaults(node)
    etree.indent(root, space="  ")


def _schema_order(node) -> tuple:
    return _KIND_ORDER.get(node.tag, 9), node.get("name") or node.get("namespace") or ""


def _name_wrapped_parts(root) -> set[str]:
    """Name the operations' parts ``parameters``; the names of the operations."""
    operations = set()
    messages = {m.get("name"): m for m in root.iterchildren(f"{{{WSDL}}}message")}
    for operation in root.iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation"):
        operations.add(operation.get("name"))
        for io in operation.iterchildren(f"{{{WSDL}}}input", f"{{{WSDL}}}output"):
            message = messages.get(io.get("message", "").rpartition(":")[2])
            parts = message.findall(f"{{{WSDL}}}part") if message is not None else []
            if len(parts) == 1 and parts[0].get("element"):
                parts[0].set("name", WRAPPED_PART)
                if io.tag == f"{{{WSDL}}}input":  # it lists part names
                    operation.set("parameterOrder", WRAPPED_PART)
    return operations


_RULES = (
    ("Response", "{} 的响应包装元素 / The response wrapper of {}"),
    ("Request", "{} 的请求 / What {} takes"),
    ("Result", "{} 的结果 / What {} returns"),
)


def type_documentation(name: str, operations: set[str]) -> str | None:
    """A type's documentation: its TYPE_DOCS entry, or by rule for the wrapper, request,
    result and list types every operation brings."""
    if name in TYPE_DOCS:
        return TYPE_DOCS[name]
    if name in operations:
        return f"{name} 的请求包装元素 / The request wrapper of {name}"
    for ending, text in _RULES:
        if name.endswith(ending) and name.removesuffix(ending) in operations:
            return text.format(name.removesuffix(ending), name.removesuffix(ending))
    if name.endswith("Array"):
        return f"{name.removesuffix('Array')} 的列表 / A list of {name.removesuffix('Array')}"
    return None


def _document_type(node, operations: set[str]) -> None:
    text = type_documentation(node.get("name"), operations)
    if text is None or node.find(f"{{{XS}}}annotation") is not None:
        return
    annotation = etree.Element(f"{{{XS}}}annotation")
    etree.SubElement(annotation, f"{{{XS}}}documentation").text = text
    node.insert(0, annotation)


def _declare_defaults(node) -> None:
    for element in node.iterfind(f".//{{{XS}}}element"):
        default = ELEMENT_DEFAULTS.get((node.get("name"), element.get("name")))
        if default is not None and element.get("minOccurs") == "0":
            element.set("default", default)


def wsdl_document(path: str, base_url: str) -> bytes:
    # app builds the endpoints, and they shape their documents with finish() above
    from his_pacs_ws.soap.app import WSDL_PLACEHOLDER, wsdl_template

    return wsdl_template(path).replace(WSDL_PLACEHOLDER.encode(), base_url.encode())


def write_snapshots(out: Path, base_url: str = SNAPSHOT_BASE_URL) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, name in SNAPSHOT_NAMES.items():
        target = out / name
        target.write_bytes(wsdl_document(path, base_url))
        written.append(target)
    return written
