"""Between spyne objects and the plain data the use cases speak.

Requests become dicts with snake_case keys (``IdCardNo`` -> ``id_card_no``), request times
without an offset are read in the hospital time zone. Results (dicts, possibly replayed
from JSON with Decimals and times as strings) become spyne objects, times shown in the
hospital time zone with their offset.
"""

from __future__ import annotations

import re
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

from spyne import ComplexModelBase
from spyne.model.complex import Array
from spyne.model.primitive import Boolean, Date, DateTime, Integer, Unicode
from spyne.protocol._inbase import InProtocolBase
from spyne.protocol.xml import XmlDocument
from spyne.model.primitive import Decimal as DecimalModel

from his_pacs_ws.domain.errors import SchemaValidationError

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
FIRST_YEAR, LAST_YEAR = 1901, 9998


@lru_cache(maxsize=None)
def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


@lru_cache(maxsize=None)
def _is_array(cls) -> bool:
    return issubclass(cls, Array) or bool(getattr(cls.Attributes, "_wrapper", False))


@lru_cache(maxsize=None)
def _array_member(cls):
    (member,) = cls._type_info.values()
    return member


def to_plain(value: Any, cls, tz: tzinfo, name: str = "") -> Any:
    """A deserialized spyne value as plain data (``name``: the element, for faults)."""
    if value is None:
        return None
    if _is_array(cls):
        member = _array_member(cls)
        return [to_plain(v, member, tz, name) for v in value]
    if isinstance(cls, type) and issubclass(cls, ComplexModelBase):
        result = {}
        for field_name, field in cls.get_flat_type_info(cls).items():
            field_value = getattr(value, field_name, None)
            if field_value is not None:
                result[snake(field_name)] = to_plain(field_value, field, tz, field_name)
        return result
    if isinstance(value, date) and not FIRST_YEAR <= value.year <= LAST_YEAR:
        # e.g. 0001-01-01T00:00:00, .NET's DateTime.MinValue for a value never set; also,
        # zones had odd local mean time offsets before 1901 that xs:dateTime cannot carry
        raise SchemaValidationError(
            f"Element '{name}': a date before {FIRST_YEAR} or after {LAST_YEAR} is not accepted"
            + (" (0001-01-01 is .NET's DateTime.MinValue: a value never set)" if value.year == 1 else ""))
    if isinstance(value, datetime):
        # The range holds in the hospital's time too, where responses show it:
        # 1901-01-01T00:00:00+14:00 is 1900 in Asia/Shanghai.
        local = value.astimezone(tz) if value.tzinfo else value.replace(tzinfo=tz)
        if not FIRST_YEAR <= local.year <= LAST_YEAR:
            raise SchemaValidationError(
                f"Element '{name}': a date before {FIRST_YEAR} or after {LAST_YEAR} is not accepted")
        if value.tzinfo is None:
            return local
    return value


def _coerce(value: Any, cls, tz: tzinfo) -> Any:
    if issubclass(cls, DateTime):
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        value = value.astimezone(tz) if value.tzinfo else value.replace(tzinfo=tz)
        # Whole seconds: PHP's DATE_ATOM, Delphi and many HIS parsers refuse fractions.
        return value.replace(microsecond=0)
    if issubclass(cls, Date):
        return date.fromisoformat(value) if isinstance(value, str) else value
    if issubclass(cls, DecimalModel) and not issubclass(cls, Integer):
        return value if isinstance(value, Decimal) else Decimal(str(value))
    if issubclass(cls, Integer):
        return int(value)
    if issubclass(cls, Boolean):
        return bool(value)
    return value


class ResultShapeError(Exception):
    """A use case's result lacks a field its wire type requires (spyne would drop the
    element silently, and the partner's parser would fail on it)."""


def build(cls, data: Any, tz: tzinfo) -> Any:
    """Plain result data as an instance of the spyne type ``cls``; a required field
    missing is ResultShapeError."""
    if data is None:
        return None
    if _is_array(cls):
        member = _array_member(cls)
        return [build(member, item, tz) for item in data]
    if issubclass(cls, ComplexModelBase):
        kwargs = {}
        fields = cls.get_flat_type_info(cls)
        for name, field in fields.items():
            value = data.get(snake(name))
            if value is not None:
                kwargs[name] = build(field, value, tz)
            elif field.Attributes.min_occurs >= 1:
                raise ResultShapeError(f"{cls.get_type_name()}.{name} is required and the result has none")
        # Instantiate the declared class, not a customized copy (spyne warns, and formats a
        # stack trace on every instance, when a customized class is instantiated).
        return (cls.__orig__ or cls)(**kwargs)
    return _coerce(data, cls, tz)


class PlainRequest(dict):
    """A request read straight from the XML into plain data (see plain_request)."""


class _Unusual(Exception):
    """Something the direct reader leaves to spyne's own deserializer."""


@lru_cache(maxsize=None)
def _members(cls) -> tuple[tuple[str, str, Any], ...]:
    """(element name, plain key, type) of a complex type's fields, in declaration order."""
    return tuple((name, snake(name), field) for name, field in cls.get_flat_type_info(cls).items())


def plain_from_element(protocol, ctx, cls, element, tz: tzinfo) -> Any:
    """A schema-valid request element straight to plain data, equal to
    ``to_plain(protocol.from_element(ctx, cls, element), cls, tz)`` but without building
    spyne objects: leaves are read by spyne itself, the structure here. Anything unusual
    (an attribute such as xsi:nil or xsi:type, a repeated or unknown element, a value
    ``to_plain`` would refuse) raises _Unusual, and the caller lets spyne do it all."""
    if element.attrib:
        raise _Unusual
    if _is_array(cls):
        member = _array_member(cls)
        return [plain_from_element(protocol, ctx, member, child, tz) for child in _children(element)]
    if issubclass(cls, ComplexModelBase):
        found = {}
        for child in _children(element):
            name = child.tag.rsplit("}", 1)[-1]
            if name in found:
                raise _Unusual
            found[name] = child
        result = {}
        for name, key, field in _members(cls):
            child = found.pop(name, None)
            if child is not None:
                value = plain_from_element(protocol, ctx, field, child, tz)
                if value is not None:
                    result[key] = value
        if found:
            raise _Unusual
        return result
    if len(element):
        raise _Unusual
    text_leaf = _text_leaf(protocol, cls)
    if text_leaf is not None:  # what spyne's reader does for a string: the text, as it is
        return (element.text or "") or (None if text_leaf else "")
    try:
        return to_plain(protocol.from_element(ctx, cls, element), cls, tz, element.tag.rsplit("}", 1)[-1])
    except SchemaValidationError:
        raise _Unusual from None


@lru_cache(maxsize=None)
def _text_leaf(protocol, cls) -> bool | None:
    """For a string type that spyne reads as the element's text unchanged: whether an empty
    text is None (its empty_is_none). None for every other type."""
    if protocol.validator is protocol.SOFT_VALIDATION or not issubclass(cls, Unicode):
        return None
    reader = getattr(protocol.deserialization_handlers[cls], "__func__", None)
    converter = getattr(protocol._from_unicode_handlers[cls], "__func__", None)
    if reader is not XmlDocument.unicode_from_element or converter is not InProtocolBase.unicode_from_bytes:
        return None
    return bool(protocol.get_cls_attrs(cls).empty_is_none)


def _children(element):
    for child in element:
        if not isinstance(child.tag, str):
            raise _Unusual
        yield child


def plain_request(protocol, ctx, tz: tzinfo) -> list | None:
    """The arguments of a wrapped operation (``[request]``) read directly, or None to let
    spyne deserialize."""
    body_class = ctx.descriptor.in_message
    if ctx.descriptor.in_header or not _is_wrapper_of_one(body_class):
        return None
    try:
        request = plain_from_element(protocol, ctx, body_class, ctx.in_body_doc, tz).get("request")
        return [None if request is None else PlainRequest(request)]
    except (_Unusual, ValueError, TypeError, OverflowError, ArithmeticError):
        return None


@lru_cache(maxsize=None)
def _is_wrapper_of_one(cls) -> bool:
    return list(cls.get_flat_type_info(cls)) == ["request"]


# The answer of a call, written straight from the result's plain data ---------------------

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_ENVELOPE_HEAD = ("<?xml version='1.0' encoding='UTF-8'?>\n"
                  f'<soap11env:Envelope xmlns:soap11env="{SOAP_ENV}" xmlns:tns="{{tns}}"><soap11env:Body>')
_ENVELOPE_TAIL = "</soap11env:Body></soap11env:Envelope>"
# What lxml escapes in text; and what it refuses (not XML characters): left to spyne.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def response_envelope(protocol, message_cls, result: Any, tz: tzinfo) -> bytes | None:
    """The SOAP answer of a wrapped operation whose result is ``result`` (plain data), the
    same bytes spyne writes for ``build(result_type, result)``: the structure here, leaves
    by spyne's own converters. A required field missing is ResultShapeError, as in build;
    anything unusual (a namespace of its own, a text that is not XML) gives None, and the
    caller lets spyne do it all. ``tests/unit/test_response_envelope.py`` holds the two
    equal."""
    try:
        namespace = message_cls.get_namespace()
        ((name, field),) = message_cls._type_info.items()
        if result is None:  # spyne writes xsi:nil for it
            return None
        out = [_ENVELOPE_HEAD.replace("{tns}", namespace), f"<tns:{message_cls.get_type_name()}>"]
        _write_element(protocol, namespace, name, field, result, tz, out)
        out.append(f"</tns:{message_cls.get_type_name()}>{_ENVELOPE_TAIL}")
    except _Unusual:
        return None
    return "".join(out).encode("utf-8")


def _write_element(protocol, namespace: str, name: str, cls, value: Any, tz: tzinfo, out: list[str]) -> None:
    if cls.get_namespace() != namespace and not _is_leaf(cls):
        raise _Unusual
    start = len(out)
    out.append(f"<tns:{name}>")
    if _is_array(cls):
        member = _array_member(cls)
        member_name = _array_member_name(cls)
        for item in value:
            if item is None:
                raise _Unusual
            _write_element(protocol, namespace, member_name, member, item, tz, out)
    elif issubclass(cls, ComplexModelBase):
        for field_name, key, field in _members(cls):
            item = value.get(key)
            if item is not None:
                _write_element(protocol, namespace, field_name, field, item, tz, out)
            elif field.Attributes.min_occurs >= 1:
                raise ResultShapeError(f"{cls.get_type_name()}.{field_name} is required and the result has none")
    else:
        text = protocol.to_unicode(cls, _coerce(value, cls, tz))
        if not isinstance(text, str) or _NOT_XML.search(text):
            raise _Unusual
        out.append(text.translate(_ESCAPES))
    if len(out) == start + 1:
        out[start] = f"<tns:{name}/>"
    else:
        out.append(f"</tns:{name}>")


@lru_cache(maxsize=None)
def _array_member_name(cls) -> str:
    (name,) = cls._type_info
    return name


@lru_cache(maxsize=None)
def _is_leaf(cls) -> bool:
    return not (_is_array(cls) or issubclass(cls, ComplexModelBase))
