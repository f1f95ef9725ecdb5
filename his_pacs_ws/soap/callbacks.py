"""Push mode on the wire: the two callback services partners implement (HisCallbackService,
PacsCallbackService), served as WSDLs for download, and the requests we send them.

The services here are never called on us; they exist so that spyne writes their WSDLs with
the same conventions as v1: document/literal wrapped, one ``request``, ``<Op>Result``.
"""

from __future__ import annotations

import base64
import os
import re
from datetime import datetime, timezone, tzinfo

from lxml import etree
from spyne import Boolean, DateTime, Integer64, ServiceBase
from spyne.util.xml import get_object_as_xml

from his_pacs_ws.domain.access import Role
from his_pacs_ws.domain.notifications import CallbackPasswordType, Notification, Outcome
from his_pacs_ws.domain.usernametoken import digest
from his_pacs_ws.soap import types as t
from his_pacs_ws.soap.convert import build
from his_pacs_ws.soap.services import operation
from his_pacs_ws.soap.types import TNS, Model, list_of, opt, req

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

SequenceNumber = t._simple(Integer64, "Sequence", ge=1)

# Every notification starts alike: the MessageId is the same on every attempt (receivers
# drop repeats), the Sequence grows per application (receivers may ignore an older one).
_HEAD = [
    ("MessageId", req(t.MessageIdType)),
    ("Sequence", req(SequenceNumber)),
    ("OccurredAt", req(DateTime)),
]


class ApplicationStatusChangedRequest(Model):
    _type_info = [
        *_HEAD,
        ("ApplicationNo", req(t.Code)),
        ("Status", req(t.ApplicationStatus)),
        ("HisStatus", req(t.Name)),
        ("Event", req(t.Code)),
        ("Locked", req(Boolean)),
        ("AccessionNo", opt(t.Code)),
        ("Operator", opt(t.Staff)),
        ("Source", req(t.EventSource)),
        ("PatientId", opt(t.Code)),
        ("Note", opt(t.Text)),
    ]


class ReportPublishedRequest(Model):
    _type_info = [*_HEAD, ("Report", req(t.Report)), ("PatientId", opt(t.Code))]


class ChargesPostedRequest(Model):
    _type_info = [
        *_HEAD,
        ("ApplicationNo", req(t.Code)),
        ("PatientId", req(t.Code)),
        ("VisitNo", opt(t.Code)),
        ("InpatientNo", opt(t.Code)),
        ("Charges", list_of(t.ChargeLine)),
        ("Refunds", list_of(t.RefundRecord)),
        ("TotalCharged", req(t.Money)),
        ("TotalRefunded", req(t.Money)),
    ]


class CriticalValueNotificationRequest(Model):
    _type_info = [*_HEAD, ("CriticalValue", req(t.CriticalValue))]


class ApplicationReleasedRequest(Model):
    _type_info = [*_HEAD, ("Application", req(t.ApplicationDetail))]


class ApplicationCancelledRequest(Model):
    _type_info = [
        *_HEAD,
        ("Application", req(t.ApplicationDetail)),
        ("Reason", opt(t.Text)),
        ("Operator", opt(t.Staff)),
    ]


def _named(base, name: str):
    """A copy of ``base`` under its own type name: each operation has its own request type."""
    return type(name, (Model,), {"_type_info": list(base._type_info.items())})


def _result(name: str):
    return type(name, (Model,), {"_type_info": [("Accepted", req(Boolean)), ("Note", opt(t.Text))]})


REQUEST_TYPES = {
    Notification.APPLICATION_STATUS_CHANGED: ApplicationStatusChangedRequest,
    Notification.REPORT_PUBLISHED: ReportPublishedRequest,
    Notification.CHARGES_POSTED: ChargesPostedRequest,
    Notification.CRITICAL_VALUE_RAISED: _named(CriticalValueNotificationRequest, "CriticalValueRaisedRequest"),
    Notification.CRITICAL_VALUE_REVOKED: _named(CriticalValueNotificationRequest, "CriticalValueRevokedRequest"),
    Notification.CRITICAL_VALUE_OVERDUE: _named(CriticalValueNotificationRequest, "CriticalValueOverdueRequest"),
    Notification.APPLICATION_RELEASED: ApplicationReleasedRequest,
    Notification.APPLICATION_CANCELLED: ApplicationCancelledRequest,
    Notification.CRITICAL_VALUE_UPDATED: _named(CriticalValueNotificationRequest, "CriticalValueUpdatedRequest"),
}
RESULT_TYPES = {kind: _result(f"{kind.value}Result") for kind in Notification}
# The wsdl:documentation of each callback operation
OPERATION_DOCS = {
    Notification.APPLICATION_STATUS_CHANGED: "申请单状态变化（含当前状态）/ An application's status changed (with its current state).",
    Notification.REPORT_PUBLISHED: "检查报告发布或更正 / An exam report was issued or corrected.",
    Notification.CHARGES_POSTED: "住院费用计入或冲销 / Inpatient charges were posted or reversed.",
    Notification.CRITICAL_VALUE_RAISED: "PACS 上报了危急值 / PACS raised a critical value.",
    Notification.CRITICAL_VALUE_REVOKED: "PACS 撤销了危急值 / PACS revoked a critical value.",
    Notification.CRITICAL_VALUE_OVERDUE: "危急值超时未接收 / A critical value was not received in time.",
    Notification.APPLICATION_RELEASED: "申请单已缴费或已发送，进入工作列表 / An application was paid or sent: it is on the worklist.",
    Notification.APPLICATION_CANCELLED: "申请单已撤销 / An application was cancelled.",
    Notification.CRITICAL_VALUE_UPDATED: "危急值闭环有了新进展 / A critical value's closed loop moved on.",
}


def _callback_service(name: str, doc: str, kinds: list[Notification]):
    """A ServiceBase with one operation per notification; calling it here is a mistake."""

    def make(kind: Notification):
        def method(ctx, request):
            raise NotImplementedError(f"{kind.value} is implemented by the partner, not here")

        method.__name__ = kind.value
        method.__doc__ = OPERATION_DOCS[kind]
        return operation(REQUEST_TYPES[kind], RESULT_TYPES[kind])(method)

    return type(name, (ServiceBase,), {"__doc__": doc, **{k.value: make(k) for k in kinds}})


HisCallbackService = _callback_service(
    "HisCallbackService",
    "Implemented by the HIS: status changes, reports, charges and critical values pushed to it.",
    [n for n in Notification if n.receiver_role is Role.HIS],
)
PacsCallbackService = _callback_service(
    "PacsCallbackService",
    "Implemented by the PACS: released and cancelled applications, the critical-value loop.",
    [n for n in Notification if n.receiver_role is Role.PACS],
)


def request_body(kind: Notification, plain: dict, tz: tzinfo, security: str | None) -> bytes:
    """The SOAP envelope of one notification: ``plain`` holds the request's fields
    (snake_case, with message_id, sequence and occurred_at)."""
    request_type = REQUEST_TYPES[kind]
    node = get_object_as_xml(build(request_type, plain, tz), request_type, "request")
    for element in node.iter():
        # spyne's standalone serializer leaves list entries unqualified; the schema is
        # elementFormDefault="qualified", and .NET would silently drop them
        if isinstance(element.tag, str) and not element.tag.startswith("{"):
            element.tag = f"{{{TNS}}}{element.tag}"
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "tns": TNS})
    if security:
        header = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Header")
        header.append(etree.fromstring(security))
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    wrapper = etree.SubElement(body, f"{{{TNS}}}{kind.value}")
    wrapper.append(node)
    etree.cleanup_namespaces(envelope, top_nsmap={"soap": SOAP_ENV, "tns": TNS})
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_CODE_PREFIX = re.compile(r"^(?:[\w.-]*:)?")


def read_answer(kind: Notification, http_status: int, body: bytes) -> tuple[Outcome, str | None, str | None]:
    """What the receiver's answer means: (outcome, fault code, message). A ``Client`` fault is
    a refusal; any other fault, HTTP error or unreadable answer is worth another try."""
    try:
        root = etree.fromstring(body, _PARSER) if body and b"<!DOCTYPE" not in body[:2048].upper() else None
    except etree.XMLSyntaxError:
        root = None
    soap_body = root.find(f"{{{SOAP_ENV}}}Body") if root is not None else None
    if soap_body is not None:
        fault = soap_body.find(f"{{{SOAP_ENV}}}Fault")
        if fault is not None:
            code = _CODE_PREFIX.sub("", (fault.findtext("faultcode") or "").strip())
            message = (fault.findtext("faultstring") or "").strip()[:2000]
            detail_code = fault.findtext(f"detail/{{{TNS}}}ServiceFault/{{{TNS}}}Code")
            outcome = Outcome.CLIENT_FAULT if code.split(".")[0] == "Client" else Outcome.SERVER_FAULT
            return outcome, (code or detail_code or "Fault")[:100], message
        response = soap_body.find(f"{{{TNS}}}{kind.value}Response")
        if response is not None and 200 <= http_status < 300:
            result = response.find(f"{{{TNS}}}{kind.value}Result")
            accepted = result.findtext(f"{{{TNS}}}Accepted") if result is not None else None
            if accepted is not None and accepted.strip() in ("false", "0"):
                note = result.findtext(f"{{{TNS}}}Note") or "the receiver answered Accepted=false"
                return Outcome.CLIENT_FAULT, "NotAccepted", note.strip()[:2000]
            if accepted is not None:
                return Outcome.DELIVERED, None, None
    if 200 <= http_status < 300:
        return Outcome.HTTP_ERROR, None, f"HTTP {http_status} without a {kind.value}Response"
    return Outcome.HTTP_ERROR, None, f"HTTP {http_status}"


_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
_BASE64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"


def security_header(username: str, password: str, password_type: str, created: datetime) -> str:
    """A WS-Security UsernameToken for the receiver: PasswordDigest (with Nonce and Created)
    or PasswordText, as the partner asked."""
    root = etree.Element(f"{{{_WSSE}}}Security", nsmap={"wsse": _WSSE, "wsu": _WSU})
    token = etree.SubElement(root, f"{{{_WSSE}}}UsernameToken")
    etree.SubElement(token, f"{{{_WSSE}}}Username").text = username
    created_text = created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if password_type == CallbackPasswordType.DIGEST.value:
        nonce = os.urandom(16)
        node = etree.SubElement(token, f"{{{_WSSE}}}Password", Type=f"{_TOKEN_PROFILE}#PasswordDigest")
        node.text = digest(nonce, created_text, password)
        etree.SubElement(token, f"{{{_WSSE}}}Nonce", EncodingType=_BASE64).text = base64.b64encode(nonce).decode()
    else:
        node = etree.SubElement(token, f"{{{_WSSE}}}Password", Type=f"{_TOKEN_PROFILE}#PasswordText")
        node.text = password
    etree.SubElement(token, f"{{{_WSU}}}Created").text = created_text
    return etree.tostring(root, encoding="unicode")
