"""Shared code of the receivers: a callback service (HisCallbackService or
PacsCallbackService) hosted from its WSDL with zeep, as a partner would host it, printing
each notification in words. It drops repeated MessageIds and older Sequences, as the
contract asks receivers to, and can be told to misbehave for outage rehearsals.
Only zeep and the standard library."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import zeep
from lxml import etree

TNS = "urn:his-pacs-ws:v1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DEFAULT_WSDL_DIR = Path(__file__).resolve().parent.parent / "wsdl"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

for _stream in (sys.stdout, sys.stderr):
    if hasattr(_stream, "reconfigure"):
        _stream.reconfigure(errors="backslashreplace", line_buffering=True)


def parser(description: str, default_port: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=default_port)
    p.add_argument("--wsdl-dir", default=str(DEFAULT_WSDL_DIR), help="where his-callback.wsdl and pacs-callback.wsdl are")
    auth = p.add_argument_group("the UsernameToken his-pacs-ws must send (systems set-callback --username)")
    auth.add_argument("--username", default=os.environ.get("HIS_PACS_CALLBACK_USER"),
                      help="env HIS_PACS_CALLBACK_USER; without it any caller is accepted")
    auth.add_argument("--password", default=os.environ.get("HIS_PACS_CALLBACK_PASSWORD"),
                      help="env HIS_PACS_CALLBACK_PASSWORD")
    rehearse = p.add_argument_group("rehearsing outages")
    rehearse.add_argument("--slow", type=float, default=0.0, metavar="SECONDS", help="wait before each answer")
    rehearse.add_argument("--slow-count", type=int, metavar="N", help="only the first N notifications are slow")
    rehearse.add_argument("--fail", type=int, default=0, metavar="N",
                          help="answer the first N notifications with a Server fault (retried)")
    rehearse.add_argument("--client-fault", action="append", default=[], metavar="OPERATION",
                          help="refuse this operation (or 'all') with a Client fault: not retried")
    rehearse.add_argument("--record", metavar="FILE", help="append each notification to FILE as a JSON line")
    rehearse.add_argument("--quiet", action="store_true", help="print nothing per notification")
    return p


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Receiver:
    def __init__(self, wsdl: Path, service: str, args, describe):
        client = zeep.Client(str(wsdl))
        self.binding = next(iter(client.wsdl.bindings.values()))
        self.service = service
        self.args = args
        self.describe = describe
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.latest: dict[str, int] = {}
        self.failures_left = args.fail
        self.slow_left = args.slow_count or 0
        self.count = 0
        self.received: list[tuple[dict, object]] = []  # (entry, request) of each answered notification

    # --- WSGI
    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] != "POST":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [f"{self.service}: POST notifications here\n".encode()]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        started = time.time()
        status, answer = self.handle(body, started, environ.get("HTTP_USER_AGENT", ""))
        start_response(status, [("Content-Type", "text/xml; charset=utf-8"), ("Content-Length", str(len(answer)))])
        return [answer]

    def handle(self, body: bytes, started: float, agent: str = "") -> tuple[str, bytes]:
        try:
            envelope = etree.fromstring(body, _PARSER)
            operation = etree.QName(envelope.find(f"{{{SOAP_ENV}}}Body")[0]).localname
            request = self.binding.get(operation).input.deserialize(envelope)
        except Exception as exc:  # not one of ours: the sender must fix it
            return self.fault("Client.SchemaValidationError", f"unreadable notification: {type(exc).__name__}: {exc}")
        if not self.authenticated(envelope):
            return self.fault("Client.AuthenticationFailed", "authentication failed")
        if self.args.record:  # the moment it arrived, before any rehearsed slowness
            self.record({"operation": operation, "message_id": request.MessageId, "sequence": int(request.Sequence),
                         "application_no": application_no(request), "started": started, "outcome": "received",
                         "sender": agent}, None, quiet=True)
        with self.lock:
            slow = self.args.slow if self.args.slow_count is None or self.slow_left > 0 else 0
            self.slow_left -= 1
        if slow:
            time.sleep(slow)
        message_id, sequence = request.MessageId, int(request.Sequence)
        subject = application_no(request)
        entry = {"operation": operation, "message_id": message_id, "sequence": sequence,
                 "application_no": subject, "started": started, "finished": None, "outcome": None,
                 "sender": agent}
        with self.lock:
            if operation in self.args.client_fault or "all" in self.args.client_fault:
                entry["outcome"] = "client-fault"
                self.record(entry, request)
                return self.fault("Client.Refused", f"{operation} is refused by this receiver (rehearsal)")
            if self.failures_left > 0:
                self.failures_left -= 1
                entry["outcome"] = "server-fault"
                self.record(entry, request)
                return self.fault("Server.Unavailable", "the receiver is failing (rehearsal)")
            if message_id in self.seen:
                entry["outcome"] = "duplicate"
                note = "a repeated MessageId: already handled"
            elif subject and sequence < self.latest.get(subject, 0):
                entry["outcome"] = "older"
                self.seen.add(message_id)
                note = "older than a notification already applied: ignored"
            else:
                entry["outcome"] = "applied"
                self.seen.add(message_id)
                if subject:
                    self.latest[subject] = sequence
                note = None
            self.count += 1
            self.record(entry, request)
        result = {"Accepted": True}
        if note:
            result["Note"] = note
        answer = self.binding.get(operation).output.serialize(**{f"{operation}Result": result})
        return "200 OK", etree.tostring(answer.content, xml_declaration=True, encoding="UTF-8")

    def authenticated(self, envelope) -> bool:
        if not self.args.username:
            return True
        token = envelope.find(f"{{{SOAP_ENV}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
        if token is None or (token.findtext(f"{{{WSSE}}}Username") or "") != self.args.username:
            return False
        password = token.find(f"{{{WSSE}}}Password")
        given = (password.text or "") if password is not None else ""
        if (password.get("Type") or "").endswith("#PasswordDigest"):
            nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
            created = token.findtext(f"{{{WSU}}}Created") or ""
            expected = base64.b64encode(hashlib.sha1(nonce + created.encode() + self.args.password.encode()).digest())
            return hmac.compare_digest(expected.decode(), given)
        return hmac.compare_digest(self.args.password or "", given)

    def record(self, entry: dict, request, *, quiet: bool = False) -> None:
        entry["finished"] = time.time()
        if request is not None:
            self.received.append((entry, request))
        if not (self.args.quiet or quiet):
            stamp = datetime.now().strftime("%H:%M:%S")
            print(f"[{stamp}] {entry['operation']} #{entry['sequence']} {entry['message_id']}: "
                  f"{self.describe(entry['operation'], request)} -> {entry['outcome']}")
        if self.args.record:
            with open(self.args.record, "a", encoding="utf-8") as out:
                line = {**entry, "request": _plain(request) if request is not None else None}
                out.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")

    @staticmethod
    def fault(code: str, message: str) -> tuple[str, bytes]:
        envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
        fault = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
        etree.SubElement(fault, "faultcode").text = f"soap:{code}"
        etree.SubElement(fault, "faultstring").text = message
        return "500 Internal Server Error", etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def application_no(request) -> str | None:
    for holder in (request, getattr(request, "Application", None), getattr(request, "Report", None),
                   getattr(request, "CriticalValue", None)):
        number = getattr(holder, "ApplicationNo", None) if holder is not None else None
        if number:
            return number
    return None


def _plain(value):
    from zeep.helpers import serialize_object

    return serialize_object(value, dict)


def start_in_thread(host: str, port: int, wsdl: Path, service: str, describe, **options) -> Receiver:
    """A receiver serving in a background thread (for scripts that also make the calls)."""
    defaults = dict(username=None, password=None, slow=0.0, slow_count=None, fail=0, client_fault=[],
                    record=None, quiet=True)
    receiver = Receiver(wsdl, service, argparse.Namespace(**{**defaults, **options}), describe)
    server = make_server(host, port, receiver, server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def serve(args, wsdl_name: str, service: str, describe) -> None:
    receiver = Receiver(Path(args.wsdl_dir) / wsdl_name, service, args, describe)
    server = make_server(args.host, args.port, receiver, server_class=_Server, handler_class=_QuietHandler)
    print(f"{service} listening at http://{args.host}:{server.server_port}/ "
          f"(on the server: his-pacs-ws systems set-callback NAME --url http://{args.host}:{server.server_port}/)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print(f"{receiver.count} notifications received")
