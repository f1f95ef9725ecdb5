"""A recorded exchange, readable: indented XML, credentials masked once more for the screen."""

from __future__ import annotations

import re

from lxml import etree

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True)
# The record is stored masked; this is a second guard for records older than the masking.
_CREDENTIALS = re.compile(r"(<(?:[\w.-]+:)?(Password|Nonce)\b[^>]*>).*?(</(?:[\w.-]+:)?\2\s*>)", re.DOTALL)


def pretty_xml(body: bytes | None) -> str | None:
    if body is None:
        return None
    try:
        text = etree.tostring(etree.fromstring(body, _PARSER), pretty_print=True, encoding="unicode")
    except etree.XMLSyntaxError:
        text = body.decode("utf-8", "replace")
    return _CREDENTIALS.sub(r"\1***\3", text)
