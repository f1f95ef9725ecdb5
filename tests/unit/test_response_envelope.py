"""A call's answer written straight from the result's plain data (convert.response_envelope)
is byte for byte what spyne writes for the built result, for every operation and every
kind of value; what spyne would refuse is left to spyne."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

import his_pacs_ws.soap.compat  # noqa: F401  (spyne on Python 3.12+)
from spyne import ComplexModelBase, MethodContext
from spyne.model.primitive import Boolean, Date, DateTime, Integer
from spyne.model.primitive import Decimal as DecimalModel
from spyne.protocol import ProtocolBase

from his_pacs_ws.config import Settings
from his_pacs_ws.services.context import Context
from his_pacs_ws.soap.convert import (
    ResultShapeError,
    _array_member,
    _is_array,
    _members,
    build,
    response_envelope,
)
from his_pacs_ws.soap.protocol import make_endpoint
from his_pacs_ws.soap.services import HisService, PacsService

TZ = Settings().tz
ENDPOINTS = {service: make_endpoint(service, Context(Settings())) for service in (HisService, PacsService)}
OPERATIONS = [(service, name) for service in (HisService, PacsService) for name in sorted(service.public_methods)]


def spyne_answer(service, operation: str, result) -> bytes:
    """What spyne itself writes for this result."""
    endpoint = ENDPOINTS[service]
    ctx = MethodContext(endpoint, MethodContext.SERVER)
    ctx.descriptor = service.public_methods[operation]
    ((_, field),) = ctx.descriptor.out_message._type_info.items()
    ctx.out_object = [build(field, result, TZ)]
    endpoint.app.out_protocol.serialize(ctx, ProtocolBase.RESPONSE)
    endpoint.app.out_protocol.create_out_string(ctx)
    return b"".join(ctx.out_string)


def direct_answer(service, operation: str, result) -> bytes | None:
    protocol = ENDPOINTS[service].app.out_protocol
    return response_envelope(protocol, service.public_methods[operation].out_message, result, TZ)


XML_CHARACTERS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff") | \
    st.sampled_from("\t\n\r")
TEXT = st.text(XML_CHARACTERS, max_size=12) | \
    st.sampled_from(["", " ", "a&b", "<x/>", "]]>", "\r\n", "\t两端\t", "\"'", "&amp;"])
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
MOMENTS = st.datetimes(min_value=datetime(1902, 1, 1), max_value=datetime(9997, 12, 31))


def leaf(cls):
    """Values of a leaf type, as a use case gives them and as a replay reads them back from JSON."""
    if issubclass(cls, Boolean):
        return st.booleans()
    if issubclass(cls, Integer):
        return st.integers(0, 2**31 - 1)
    if issubclass(cls, DecimalModel):
        places = cls.Attributes.fraction_digits
        places = 3 if places is None or places == Decimal("inf") else int(places)
        numbers = st.decimals(min_value=0, max_value=10**9, places=places, allow_nan=False, allow_infinity=False)
        return numbers | numbers.map(str)
    if issubclass(cls, DateTime):
        moments = st.builds(lambda m, tz: m.replace(tzinfo=tz), MOMENTS, OFFSETS) | MOMENTS
        return moments | moments.map(datetime.isoformat)
    if issubclass(cls, Date):
        days = st.dates(min_value=date(1902, 1, 1), max_value=date(9997, 12, 31))
        return days | days.map(date.isoformat)
    values = getattr(cls.Attributes, "values", None)
    if values:
        return st.sampled_from(sorted(values))
    return TEXT


def data(cls, depth: int = 0):
    """Plain result data of a wire type: every required field, any of the optional ones."""
    if _is_array(cls):
        return st.lists(data(_array_member(cls), depth + 1), max_size=2 if depth < 3 else 0)
    if issubclass(cls, ComplexModelBase):
        required, optional = {}, {}
        for _, key, field in _members(cls):
            (required if field.Attributes.min_occurs >= 1 else optional)[key] = data(field, depth + 1)
        return st.fixed_dictionaries(required, optional=optional)
    return leaf(cls)


def result_type(service, operation: str):
    ((_, field),) = service.public_methods[operation].out_message._type_info.items()
    return field


@pytest.mark.parametrize("service, operation", OPERATIONS, ids=[name for _, name in OPERATIONS])
@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_direct_answer_is_spynes(service, operation, draw):
    result = draw.draw(data(result_type(service, operation)))
    assert direct_answer(service, operation, result) == spyne_answer(service, operation, result)


WITH_REQUIRED = [(service, name) for service, name in OPERATIONS
                 if any(field.Attributes.min_occurs >= 1 for _, _, field in _members(result_type(service, name)))]


@pytest.mark.parametrize("service, operation", WITH_REQUIRED, ids=[name for _, name in WITH_REQUIRED])
def test_a_missing_required_field_is_an_error_in_both(service, operation):
    with pytest.raises(ResultShapeError):
        direct_answer(service, operation, {})
    with pytest.raises(ResultShapeError):
        spyne_answer(service, operation, {})


def test_a_text_that_is_not_xml_is_left_to_spyne():
    result = {"application": {"application_no": "A\x01", "status": "NEW", "his_status": "x", "locked": False,
                              "updated_at": datetime(2026, 1, 1, tzinfo=timezone.utc)}}
    assert direct_answer(HisService, "SubmitApplication", result) is None
    with pytest.raises(ValueError):  # spyne refuses it, and the call is answered InternalError
        spyne_answer(HisService, "SubmitApplication", result)


def test_no_result_at_all_is_left_to_spyne():
    assert direct_answer(HisService, "SubmitApplication", None) is None


def test_every_operation_answers_one_result_element():
    for service, operation in OPERATIONS:
        assert len(service.public_methods[operation].out_message._type_info) == 1, operation
