"""spyne, adapted: its error paths mapped to contract faults, its logging kept free of
request content, multiref off, its WSDL shaped for every stack (soap/wsdl.py), and fault
envelopes for errors spyne never sees."""

from __future__ import annotations

import codecs
import logging
import re
from datetime import datetime, timezone

from lxml import etree
from spyne import Application, Fault
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from his_pacs_ws.services.context import Context
from his_pacs_ws.soap.faults import fault, fault_code, internal_error
from his_pacs_ws.soap.call import Call
from his_pacs_ws.soap.types import TNS
from his_pacs_ws.soap.wsdl import finish

log = logging.getLogger(__name__)

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
ACTOR_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
# The headers this service processes; any other marked mustUnderstand="1" is refused.
UNDERSTOOD_HEADERS = {f"{{{WSSE}}}Security"}
XML_MEDIA_TYPES = {"text/xml", "application/xml", "application/soap+xml"}


def soap_fault(code: str, message: str) -> Fault:
    """A fault whose code SOAP 1.1 itself defines (VersionMismatch, MustUnderstand): the
    faultcode is the bare code, the detail the contract's ServiceFault like any other."""
    f = fault(code, message)
    f.faultcode = code
    return f


def media_type(content_type: str | None) -> tuple[str | None, str | None]:
    """The media type and charset of a Content-Type header (None when absent)."""
    if not content_type or not content_type.strip():
        return None, None
    kind, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').strip("'") or None
    return kind.strip().lower(), charset


_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z0-9._:-]{1,40})[\"']")
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def _codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decoded_for_parsing(body: bytes, content_type: str | None) -> bytes | Fault:
    """The body as bytes an XML parser reads correctly without the HTTP header, or the fault.

    A byte order mark says the encoding (RFC 7303). Otherwise a charset in the Content-Type
    must name a known encoding that decodes the body and agrees with the XML declaration,
    if there is one; without a declaration the body is passed on re-encoded as UTF-8, the
    parser's default. Without a charset the document speaks for itself (UTF-8 by default)."""
    kind, charset = media_type(content_type)
    if kind is not None and kind not in XML_MEDIA_TYPES:
        return fault("UnsupportedMediaType",
                     "SOAP requests are XML: send Content-Type text/xml; charset=utf-8")
    if charset is None or body.startswith(_BOMS):
        return body
    codec = _codec(charset)
    if codec is None:
        return fault("XmlSyntaxError", "the Content-Type names a charset this service does not know")
    try:
        text = body.decode(codec)
    except (UnicodeDecodeError, ValueError):
        return fault("XmlSyntaxError", f"the request body is not valid {codec}, as its Content-Type says")
    declared = _DECLARED_ENCODING.match(body)
    if declared is None:
        return text.encode("utf-8")
    if _codec(declared.group(1).decode("ascii")) != codec:
        return fault("XmlSyntaxError", "the Content-Type's charset and the XML declaration's encoding differ")
    return body


def envelope_problem(root) -> Fault | None:
    """What makes a parsed request something other than one SOAP 1.1 call: another SOAP
    version, a Body that is missing, empty or holds more than one operation, or a header
    this service must understand and does not."""
    tag = root.tag if isinstance(root.tag, str) else ""
    if tag == f"{{{SOAP12_ENV}}}Envelope":
        return soap_fault("VersionMismatch", "this service speaks SOAP 1.1 (envelope namespace "
                          f"{SOAP_ENV}); the request is SOAP 1.2")
    if tag != f"{{{SOAP_ENV}}}Envelope":
        return fault("SchemaValidationError", "the request is not a SOAP 1.1 Envelope")
    children = [child for child in root if isinstance(child.tag, str)]
    names = [child.tag for child in children]
    header_tag, body_tag = f"{{{SOAP_ENV}}}Header", f"{{{SOAP_ENV}}}Body"
    if names not in ([body_tag], [header_tag, body_tag]):
        return fault("SchemaValidationError",
                     "the Envelope must hold an optional Header, then the Body, and nothing else")
    operations = [child for child in children[-1] if isinstance(child.tag, str)]
    if len(operations) != 1:
        return fault("SchemaValidationError", "the SOAP Body must hold exactly one operation element")
    if len(children) == 2:
        for header in children[0]:
            if not isinstance(header.tag, str):
                continue
            must = (header.get(f"{{{SOAP_ENV}}}mustUnderstand") or "0").strip()
            actor = header.get(f"{{{SOAP_ENV}}}actor") or ACTOR_NEXT
            if must in ("1", "true") and actor == ACTOR_NEXT and header.tag not in UNDERSTOOD_HEADERS:
                return soap_fault("MustUnderstand", "a header marked mustUnderstand is not understood "
                                  f"here: {etree.QName(header).localname[:64]}")
    return None


def quiet_spyne_logging() -> None:
    """spyne logs whole raw requests (patient data) on its ``.invalid`` loggers and the text
    of every fault on others. Our dispatcher logs what matters, without request content."""
    for name in ("spyne.protocol.xml.invalid", "spyne.protocol.soap.soap11.invalid",
                 "spyne.protocol.soap.soap12.invalid"):
        logger = logging.getLogger(name)
        logger.disabled = True
        logger.propagate = False
    logging.getLogger("spyne").setLevel(logging.CRITICAL)


_ELEMENT = re.compile(r"Element '(?:\{[^}]*\})?([^'{}]*)'")
_FACET = re.compile(r"\[facet '(\w+)'\]")
_ATOMIC = re.compile(r"atomic type '([\w:]+)'\.?\s*$")
_STRUCTURE = re.compile(r"(This element is not expected|Missing child element\(s\))\.(?: Expected is [^()]*\([^()]*\)\.?)?")
_NAMESPACE = re.compile(r"\{[^}]*\}")
FACETS = {
    "enumeration": "the value is not one of the allowed values",
    "maxLength": "the value is too long",
    "minLength": "the value is too short (or empty)",
    "fractionDigits": "the value has too many fraction digits",
    "totalDigits": "the value has too many digits",
    "minInclusive": "the value is out of range",
    "maxInclusive": "the value is out of range",
    "minExclusive": "the value is out of range",
    "maxExclusive": "the value is out of range",
    "pattern": "the value does not match the pattern",
}


def redact_schema_message(message: str | bytes) -> str:
    """lxml's message quotes the offending value, and the caller's value may be patient
    data: rebuild the message from the element name and the rule broken, never the value."""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    element = _ELEMENT.search(message)
    where = f"Element '{element.group(1)}': " if element else ""
    if facet := _FACET.search(message):
        return where + FACETS.get(facet.group(1), f"the value breaks the {facet.group(1)} rule")
    if atomic := _ATOMIC.search(message):
        return where + f"the value is not a valid {atomic.group(1)}"
    if structure := _STRUCTURE.search(message):
        return where + _NAMESPACE.sub("", structure.group(0))
    return where + "the request does not match the schema"


def contract_fault(error: Exception) -> Fault:
    """Protocol-level errors raised inside spyne, as the contract's faults."""
    if isinstance(error, Fault):
        code = error.faultcode or ""
        if code.startswith(("Client.", "Server.")) and error.detail is not None:
            return error  # already one of ours
        if code.endswith("SchemaValidationError") or code.endswith("ValidationError"):
            return fault("SchemaValidationError", redact_schema_message(error.faultstring or ""))
        if code.endswith("XMLSyntaxError"):
            return fault("XmlSyntaxError", "the request is not well-formed XML")
        if code.endswith("RequestTooLong"):
            return fault("RequestTooLarge", "the request body is too large")
        if code.startswith("Client"):
            return fault("SchemaValidationError", redact_schema_message(error.faultstring or "bad request"))
    log.error("unexpected protocol error: %s", type(error).__name__)
    return internal_error()


_DATE_LIKE = re.compile(r"^\s*-?\d{4,}-\d\d-\d\d")


def unreadable_element(body) -> str | None:
    """The first element holding a date or date-time Python cannot read (hour 24, a year
    beyond 1..9999 or one that an offset pushes there), to name it in the fault."""
    for node in body.iter() if body is not None else ():
        if not isinstance(node.tag, str) or len(node) or not node.text or not _DATE_LIKE.match(node.text):
            continue
        try:
            value = datetime.fromisoformat(node.text.strip().replace("Z", "+00:00"))
            if value.tzinfo is not None:
                value.astimezone(timezone.utc)
        except (ValueError, OverflowError):
            return etree.QName(node).localname
    return None


class Endpoint(WsgiApplication):
    """spyne's WSGI server with its error paths mapped to contract faults."""

    def get_in_object(self, ctx):
        # spyne turns only Faults into errors here; a schema-valid value that Python cannot
        # hold (24:00:00, year 0001 with an offset) would escape as an exception.
        try:
            super().get_in_object(ctx)
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            log.info("unreadable value in a request: %s", type(exc).__name__)
            ctx.in_object = None
            where = unreadable_element(ctx.in_body_doc)
            ctx.in_error = ctx.out_error = fault(
                "SchemaValidationError",
                (f"Element '{where}': " if where else "") + "a value in the request cannot be read "
                "(a date-time out of range?)")

    def handle_error(self, p_ctx, others, error, start_response):
        mapped = contract_fault(error)
        if p_ctx.in_error is error:
            p_ctx.in_error = mapped
        if p_ctx.out_error is error:
            p_ctx.out_error = mapped
        Call.of(p_ctx.transport.req_env).fault_code = fault_code(mapped)
        return super().handle_error(p_ctx, others, mapped, start_response)


def _on_method_call(ctx) -> None:
    call = Call.of(ctx.transport.req_env)
    call.operation = (ctx.method_request_string or "").rsplit("}", 1)[-1]
    ctx.udc = call


class Soap11WithoutMultiref(Soap11):
    """SOAP 1.1 without SOAP-encoding multiref: spyne would resolve href="#id" references
    recursively (a cycle recurses until RecursionError). Document/literal has no use for
    them; an href left in place fails schema validation like any unknown attribute."""

    def decompose_incoming_envelope(self, ctx, message=Soap11.REQUEST):
        envelope, _ = ctx.in_document
        ctx.in_document = (envelope, None)
        super().decompose_incoming_envelope(ctx, message)


def make_endpoint(service, runtime: Context) -> Endpoint:
    app = Application(
        [service],
        tns=TNS,
        name=service.__name__,
        in_protocol=Soap11WithoutMultiref(validator="lxml"),
        out_protocol=Soap11(),
    )
    app.runtime = runtime
    app.event_manager.add_listener("method_call", _on_method_call)
    endpoint = Endpoint(app, max_content_length=runtime.settings.max_request_bytes)
    endpoint.doc.wsdl11.event_manager.add_listener("wsdl_document_built", finish)
    return endpoint


def fault_envelope(f: Fault) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap11env": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    node = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(node, "faultcode").text = f"soap11env:{f.faultcode}"
    etree.SubElement(node, "faultstring").text = f.faultstring
    detail = etree.SubElement(node, "detail")
    detail.append(f.detail)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")
