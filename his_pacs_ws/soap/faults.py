"""Mapping the service's errors to SOAP faults: ``Client.<Code>`` / ``Server.<Code>`` with a
``ServiceFault`` detail element, declared on every operation of the WSDL."""

from __future__ import annotations

from lxml import etree
from spyne import Fault

from his_pacs_ws.domain.errors import ServiceError
from his_pacs_ws.soap.types import TNS


def fault(code: str, message: str, *, side: str = "Client", retryable: bool = False) -> Fault:
    detail = etree.Element(f"{{{TNS}}}ServiceFault", nsmap={"tns": TNS})
    etree.SubElement(detail, f"{{{TNS}}}Code").text = code
    etree.SubElement(detail, f"{{{TNS}}}Message").text = message
    etree.SubElement(detail, f"{{{TNS}}}Retryable").text = "true" if retryable else "false"
    return Fault(faultcode=f"{side}.{code}", faultstring=message, detail=detail)


def from_error(err: ServiceError) -> Fault:
    return fault(err.code, err.message, side=err.side, retryable=err.retryable)


def internal_error() -> Fault:
    return fault(
        "InternalError",
        "the service failed to process the request; it has been logged",
        side="Server",
        retryable=False,
    )


def fault_code(f: Fault) -> str:
    """The contract code of a fault (``Client.ApplicationNotFound`` -> ``ApplicationNotFound``)."""
    return f.faultcode.rsplit(".", 1)[-1] if "." in (f.faultcode or "") else (f.faultcode or "")
