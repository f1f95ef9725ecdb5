"""WSGI assembly: the two spyne applications behind one dispatcher that guards the door
(size, DTDs, credentials), serves each WSDL with its own address, and records every call."""

from __future__ import annotations

import hashlib
import io
import logging
import re

from lxml import etree
from spyne import Fault
from spyne import const as spyne_const

from his_pacs_ws import health
from his_pacs_ws.config import Settings
from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.domain.errors import ServiceError
from his_pacs_ws.services.auth import Authenticator
from his_pacs_ws.services.context import Context, open_context
from his_pacs_ws.services.secrets import SecretBox, load_key
from his_pacs_ws.soap.callbacks import HisCallbackService, PacsCallbackService
from his_pacs_ws.soap.convert import snake
from his_pacs_ws.soap.faults import fault, fault_code, from_error, internal_error
from his_pacs_ws.soap.call import ENVIRON_KEY, Call
from his_pacs_ws.soap.protocol import (
    PARSER_OPTIONS,
    SOAP_ENV,
    Endpoint,
    decoded_for_parsing,
    envelope_problem,
    fault_envelope,
    make_endpoint,
    quiet_spyne_logging,
)
from his_pacs_ws.soap.services import HisService, PacsService
from his_pacs_ws.soap.types import TNS
from his_pacs_ws.soap.wssecurity import WSSE, MalformedToken, read_token

log = logging.getLogger(__name__)

UNAUTHENTICATED_BODY_BYTES = 4096

ENDPOINTS = {"/ws/his": (Role.HIS, HisService), "/ws/pacs": (Role.PACS, PacsService)}
# The services partners implement for push mode: their WSDLs are here for download only.
CALLBACK_ENDPOINTS = {"/ws/his-callback": HisCallbackService, "/ws/pacs-callback": PacsCallbackService}


_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
# The record keeps the exchange as it crossed the wire, less the credentials: a PasswordText
# password (or a digest and its nonce) must not be readable from the database.
_CREDENTIALS = re.compile(rb"(<(?:[\w.-]+:)?(Password|Nonce)\b[^>]*>).*?(</(?:[\w.-]+:)?\2\s*>)", re.DOTALL)
_SECRET_TAGS = (f"{{{WSSE}}}Password", f"{{{WSSE}}}Nonce")


def without_credentials(body: bytes | None, root=None) -> bytes | None:
    """The request as recorded: passwords, digests and nonces masked. A parsed request is
    masked in its tree (CDATA and any encoding included) and serialized again, without
    the comments and processing instructions the parser dropped; one that did not parse,
    textually."""
    if root is not None:
        header = root.find(f"{{{SOAP_ENV}}}Header")
        if header is not None:
            for node in header.iter(*_SECRET_TAGS):
                node[:] = []
                node.text = "***"
        return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
    return _CREDENTIALS.sub(rb"\1***\3", body) if body else body
# spyne's options (PARSER_OPTIONS): comments and processing instructions are not kept, so
# a parsed request is recorded without them.
_GUARD_PARSER = etree.XMLParser(**PARSER_OPTIONS)


def _facts_from(root) -> dict:
    """Operation, MessageId, ApplicationNo and PatientId of a request spyne refused, for
    its call record. Read from the parsed envelope; never more than the first of each."""
    body = root.find(f"{{{SOAP_ENV}}}Body")
    operation = next(iter(body), None) if body is not None else None
    if operation is None or not isinstance(operation.tag, str):
        return {}
    facts = {"operation": _printable(etree.QName(operation).localname)}
    for name in ("MessageId", "ApplicationNo", "PatientId"):
        node = operation.find(f".//{{{TNS}}}{name}")
        if node is not None and node.text:
            facts[snake(name)] = _printable(node.text)
    return facts


def _printable(text: str) -> str:
    return "".join(ch for ch in text.strip() if ch.isprintable())[:64]


class Dispatcher:
    """The WSGI application: routes /ws/his and /ws/pacs, refuses what must not reach
    spyne (oversized bodies, DTDs, unauthenticated callers), and records every SOAP call
    with the exchange as it crossed the wire."""

    def __init__(self, runtime: Context, authenticator: Authenticator | None):
        self.runtime = runtime
        self.authenticator = authenticator
        self.endpoints = {
            path: (role, make_endpoint(service, runtime)) for path, (role, service) in ENDPOINTS.items()
        }
        self._wsdl_templates = {path: wsdl_template(path) for path in (*ENDPOINTS, *CALLBACK_ENDPOINTS)}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "").rstrip("/")
        if path in health.PATHS:  # for monitoring and load balancers
            return health.answer(environ, start_response, self.runtime)
        if path in CALLBACK_ENDPOINTS:
            if environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
                return self._wsdl(environ, start_response, path)
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "GET")])
            return [b"partners implement this service and his-pacs-ws calls it; its WSDL is at ?wsdl\n"]
        if path not in self.endpoints:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found; the services are at /ws/his and /ws/pacs\n"]
        role, endpoint = self.endpoints[path]
        if environ.get("REQUEST_METHOD") != "POST":
            return self._wsdl(environ, start_response, path)
        return self._call(environ, start_response, role, endpoint)

    def _wsdl(self, environ, start_response, path: str):
        """The WSDL with this request's address, or HIS_PACS_PUBLIC_URL's. (spyne would fix
        the address once, from whichever request came first, Host header and all.)"""
        query = environ.get("QUERY_STRING", "").lower()
        if query not in ("wsdl", "wsdl=", "singlewsdl"):
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "POST")])
            return [b"POST SOAP requests here; the WSDL is at ?wsdl\n"]
        document = self._wsdl_templates[path].replace(WSDL_PLACEHOLDER.encode(), _base_url(environ, self.runtime.settings).encode())
        # The same bytes from every worker, so a client (or proxy) can revalidate its copy.
        etag = f'"{hashlib.sha256(document).hexdigest()[:32]}"'
        headers = [("ETag", etag), ("Cache-Control", "no-cache")]
        if etag in [t.strip() for t in environ.get("HTTP_IF_NONE_MATCH", "").split(",")]:
            start_response("304 Not Modified", headers)
            return []
        start_response("200 OK", [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(document))), *headers])
        return [document]

    def _call(self, environ, start_response, role: Role, endpoint: Endpoint):
        """The pipeline: guard -> authentication -> operation (spyne) -> commit and record,
        each stage working on the one ``Call``. The HTTP status and headers are given once,
        at the end: until the change is committed the answer may still turn into a fault."""
        call = Call.start(environ, role.value)
        answer: list = []  # the status and headers spyne gave

        def spyne_start_response(status, headers, exc_info=None):
            answer[:] = [status, headers]

        refusal, chunks = self._guard(environ, call), []
        if refusal is None:
            refusal = self._authenticate(call, role)
        if refusal is None:
            try:
                chunks = list(endpoint(environ, spyne_start_response))
                if not answer:
                    raise RuntimeError("spyne gave no HTTP status")
            except Exception as exc:  # never a bare HTTP 500 page: always a fault envelope
                log.error("unhandled %s in %s", type(exc).__name__, call.operation or "a SOAP call")
                refusal = internal_error()
        if refusal is not None:
            call.fault_code = fault_code(refusal)
            chunks, answer = self._fault(refusal)
        pending, call.transaction = call.transaction, None
        if pending is not None and pending.handed_over:  # a change, not committed yet
            if call.fault_code is not None:  # e.g. its answer could not be built
                pending.abandon()
            else:
                chunks, answer = self._commit(call, pending, chunks, answer)
                start_response(*answer)
                return chunks
        self._record(call, b"".join(chunks))
        start_response(*answer)
        return chunks

    def _commit(self, call: Call, pending, chunks: list, answer: list) -> tuple[list, list]:
        """Commit a change together with its record; the answer to give, a fault if the
        change could not be committed (then recorded as such)."""
        row = None
        try:
            row = self._row(call, b"".join(chunks))
            self.runtime.finish_call(pending, row)
        except Exception as exc:
            pending.abandon()  # if the record could not even be built
            if row is None or not self.runtime.was_recorded(row):
                # nothing was stored, or the database cannot tell now: the caller retries,
                # and this record takes the place of the committed one if there is one
                log.warning("a %s call could not be committed: %s", call.operation, type(exc).__name__)
                refusal = from_error(exc) if isinstance(exc, ServiceError) else internal_error()
                call.fault_code = fault_code(refusal)
                chunks, answer = self._fault(refusal)
                self._record(call, b"".join(chunks), replaces=row)
                return chunks, answer
            # the COMMIT went through and only its acknowledgement was lost: the change and
            # this record are stored, and this answer is the true one
            log.warning("a %s call was committed, its acknowledgement lost: %s", call.operation, type(exc).__name__)
        self._log(call, row)
        return chunks, answer

    @staticmethod
    def _fault(refusal: Fault) -> tuple[list[bytes], list]:
        body = fault_envelope(refusal)
        return [body], ["500 Internal Server Error", [
            ("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(body)))]]

    def _guard(self, environ, call: Call) -> Fault | None:
        limit = self.runtime.settings.max_request_bytes
        codings = [c.strip().lower() for c in environ.get("HTTP_TRANSFER_ENCODING", "").split(",") if c.strip()]
        if any(coding != "chunked" for coding in codings):  # gunicorn passes gzip on undecoded
            return fault("BadHttpRequest", "the HTTP request is malformed (only chunked transfer coding is accepted)")
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return fault("RequestTooLarge", f"the request body exceeds {limit} bytes")
        stream = environ["wsgi.input"]
        body = stream.read(declared) if declared else stream.read(limit + 1)
        call.body = body[:limit]
        if len(body) > limit:
            return fault("RequestTooLarge", f"the request body exceeds {limit} bytes")
        if _DOCTYPE.search(body):
            return fault("DTDNotAllowed", "document type declarations are not accepted")
        readable = decoded_for_parsing(body, environ.get("CONTENT_TYPE"))
        if isinstance(readable, Fault):
            return readable
        try:
            root = etree.fromstring(readable, _GUARD_PARSER)
        except etree.XMLSyntaxError:
            return fault("XmlSyntaxError", "the request is not well-formed XML")
        if root.getroottree().docinfo.doctype:  # declared in an encoding the byte check missed
            return fault("DTDNotAllowed", "document type declarations are not accepted")
        call.root = root
        if problem := envelope_problem(root):
            return problem
        # spyne parses exactly what was checked here, and needs no charset or Content-Type
        # of its own (it would answer a POST without one with HTTP 405)
        environ["wsgi.input"] = io.BytesIO(readable)
        environ["CONTENT_LENGTH"] = str(len(readable))
        environ["CONTENT_TYPE"] = "text/xml"
        return None

    def _authenticate(self, call: Call, role: Role) -> Fault | None:
        if self.authenticator is None:  # HIS_PACS_AUTH=off: a local demo, warned about at start
            call.caller = Caller(role.value, role)
            return None
        try:
            token = read_token(call.root)
        except MalformedToken:
            token = None
        try:
            call.caller = self.authenticator.authenticate(token, role)
        except ServiceError as err:
            if token is not None:  # recorded under the name it claimed, to find failed logins
                call.claimed = token.username
            return from_error(err)
        except Exception as exc:  # e.g. a secret key that does not open the stored passwords
            log.error("authentication could not be checked: %s", type(exc).__name__)
            return internal_error()
        return None

    def _row(self, call: Call, response: bytes) -> dict:
        if call.operation is None and call.root is not None:
            call.note_facts(_facts_from(call.root))
        request = without_credentials(call.body, call.root)
        if call.caller is None and request:  # anyone can send these: keep enough to see what it was
            request = request[:UNAUTHENTICATED_BODY_BYTES]
        return call.record(request, response)

    def _record(self, call: Call, response: bytes, replaces: dict | None = None) -> None:
        row = self._row(call, response)
        if replaces is not None:
            row.update(at=replaces["at"], replaces=True)
        try:
            self.runtime.record_call(**row)
        except Exception as exc:
            log.warning("could not record a %s call: %s", call.operation, type(exc).__name__)
        self._log(call, row)

    @staticmethod
    def _log(call: Call, row: dict) -> None:
        log.info(  # %r: names and ids of a refused call come from an unauthenticated body
            "%s %r caller=%r message_id=%r outcome=%s%s %.1fms",
            call.service, call.operation, call.caller_name, call.message_id,
            "FAULT " + call.fault_code if call.fault_code else "OK", " (replayed)" if call.replayed else "",
            row["duration_ms"],
        )


WSDL_PLACEHOLDER = "http://his-pacs-ws.invalid"
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def wsdl_template(path: str) -> bytes:
    service = ENDPOINTS[path][1] if path in ENDPOINTS else CALLBACK_ENDPOINTS[path]
    endpoint = make_endpoint(service, Context(Settings()))
    endpoint.doc.wsdl11.build_interface_document(WSDL_PLACEHOLDER + path)
    return endpoint.doc.wsdl11.get_interface_document()


def _base_url(environ, settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url
    scheme = "https" if environ.get("HTTP_X_FORWARDED_PROTO") == "https" else environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST", "")
    if not _HOST.match(host):  # never echo a malformed Host header into the document
        host = f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    return f"{scheme}://{host}"


def build_app(settings: Settings, database_url: str):
    """The WSGI application for one process. The caller has resolved and migrated the database."""
    context = open_context(settings, database_url, serving=True)
    authenticator = None
    if settings.auth:
        box = SecretBox(load_key(settings.secret_key, settings.data_dir, create=True))
        authenticator = Authenticator(context, box)
    else:
        log.warning("AUTHENTICATION IS OFF (HIS_PACS_AUTH=off): anyone who reaches this port may call "
                    "both services. Use this only for a local demo.")
    quiet_spyne_logging()
    # spyne runs a full gc.collect() once a second after a call, to close uploaded files
    # (we take none); with SQLAlchemy's heap each run costs tens of milliseconds.
    spyne_const.MIN_GC_INTERVAL = float("inf")
    from his_pacs_ws.web.mount import mount  # the console and /metrics, on the same port

    operations = {name for _, service in ENDPOINTS.values() for name in service.public_methods}
    return mount(Dispatcher(context, authenticator), context, operations=operations,
                 call_key=ENVIRON_KEY)
