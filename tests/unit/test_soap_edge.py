"""The SOAP edge without a server: names, conversions, fault text without patient data."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from his_pacs_ws.soap import types as t
from his_pacs_ws.soap.protocol import redact_schema_message
from his_pacs_ws.soap.convert import build, snake, to_plain

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_names_map_between_wire_and_plain():
    assert snake("IdCardNo") == "id_card_no"
    assert snake("StudyInstanceUid") == "study_instance_uid"
    assert snake("From") == "from"


def test_request_time_without_offset_is_hospital_time():
    request = t.ConfirmPaymentRequest(MessageId="m", ApplicationNo="A", Amount=Decimal("1.00"),
                                      PaidAt=datetime(2026, 11, 26, 9, 0))
    plain = to_plain(request, t.ConfirmPaymentRequest, SHANGHAI)
    assert plain["paid_at"].utcoffset() == timedelta(hours=8)
    assert plain["amount"] == Decimal("1.00")
    assert "invoice_no" not in plain


def test_results_show_times_in_hospital_time_and_decimals_exactly():
    replayed = {"charges": [{"charge_id": "1", "application_no": "A", "item_code": "X", "item_name": "x",
                             "quantity": "1.000", "unit_price": "0.10", "amount": "0.10",
                             "refunded_quantity": "0.000", "refunded_amount": "0.00",
                             "trigger": "PAYMENT", "charged_at": "2026-11-26T01:00:00+00:00"}]}
    result = build(t.ChargeResult, replayed, SHANGHAI)
    [line] = result.Charges
    assert line.Amount == Decimal("0.10") and isinstance(line.Amount, Decimal)
    assert line.ChargedAt == datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    assert line.ChargedAt.utcoffset() == timedelta(hours=8)


def test_nested_lists_round_trip():
    item = t.ApplicationItem(ItemCode="P", ItemName="组套", Quantity=Decimal(1), UnitPrice=Decimal(0),
                             Components=[t.ApplicationItem(ItemCode="C", ItemName="c", Quantity=Decimal(1),
                                                           UnitPrice=Decimal("2.50"))])
    plain = to_plain(item, t.ApplicationItem, timezone.utc)
    assert plain["components"][0]["unit_price"] == Decimal("2.50")


LXML = "<string>:1:0:ERROR:SCHEMASV:SCHEMAV_X: "


@pytest.mark.parametrize("message, expected", [
    (LXML + "Element '{urn:his-pacs-ws:v1}Sex': [facet 'enumeration'] The value 'It's 张三' is not an element "
     "of the set {'M', 'F', 'U'}.", "Element 'Sex': the value is not one of the allowed values"),
    (LXML + "Element '{urn:his-pacs-ws:v1}BirthDate': '1990-01-01'张三' is not a valid value of the atomic "
     "type 'xs:date'.", "Element 'BirthDate': the value is not a valid xs:date"),
    (LXML + "Element '{urn:his-pacs-ws:v1}PageSize': [facet 'maxInclusive'] The value '501' is greater than "
     "'500'.", "Element 'PageSize': the value is out of range"),
    (LXML + "Element '{urn:his-pacs-ws:v1}Discount': This element is not expected. Expected is one of "
     "( {urn:his-pacs-ws:v1}ClinicalDiagnosis, {urn:his-pacs-ws:v1}Priority ).",
     "Element 'Discount': This element is not expected. Expected is one of ( ClinicalDiagnosis, Priority )."),
    ("something else entirely: '13800138000'", "the request does not match the schema"),
])
def test_schema_messages_name_the_element_and_rule_never_the_value(message, expected):
    assert redact_schema_message(message) == expected


def test_response_times_are_whole_seconds():
    [line] = build(t.ChargeResult, {"charges": [{
        "charge_id": "1", "application_no": "A", "item_code": "X", "item_name": "x", "quantity": "1",
        "unit_price": "1.00", "amount": "1.00", "refunded_quantity": "0", "refunded_amount": "0",
        "trigger": "PAYMENT", "charged_at": "2026-11-26T01:00:00.987654+00:00"}]}, SHANGHAI).Charges
    assert line.ChargedAt.isoformat() == "2026-11-26T09:00:00+08:00"


def test_recorded_requests_never_hold_credentials():
    from lxml import etree

    from his_pacs_ws.soap.app import without_credentials

    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    for password in ("<![CDATA[s3cret-pass]]>", "s3cret-pass<!-- -->", "s3cret-pass"):
        body = (f'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:w="{wsse}"><e:Header>'
                f"<w:Security><w:UsernameToken><w:Username>u</w:Username><w:Password>{password}</w:Password>"
                "<w:Nonce>bm9uY2U=</w:Nonce></w:UsernameToken></w:Security></e:Header><e:Body/></e:Envelope>")
        for encoding in ("utf-8", "utf-16"):
            raw = f"<?xml version='1.0' encoding='{encoding}'?>{body}".encode(encoding)
            root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False))
            recorded = without_credentials(raw, root)
            assert b"s3cret" not in recorded and b"bm9uY2U" not in recorded and b"***" in recorded
        unparsed = without_credentials(body.encode()[:-10])  # not well-formed: masked as text
        assert b"s3cret" not in unparsed and b"bm9uY2U" not in unparsed


def test_minutes_are_exact_decimals():
    from datetime import datetime, timedelta, timezone

    from his_pacs_ws.domain.critical import minutes_between

    start = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
    assert minutes_between(start, start + timedelta(minutes=7, seconds=3)) == Decimal("7.1")
    assert minutes_between(start, start - timedelta(minutes=1)) == Decimal("0.0")
    assert minutes_between(start, None) is None


def test_nonces_are_kept_as_long_as_a_token_stays_fresh():
    from datetime import timedelta

    from his_pacs_ws.config import Settings
    from his_pacs_ws.services.auth import Authenticator
    from his_pacs_ws.services.context import Context

    for window in (300, 600, 3600):
        auth = Authenticator(Context(Settings(token_window_seconds=window)), box=None)
        assert auth.nonce_keep >= 2 * timedelta(seconds=window)


def test_names_from_a_refused_body_cannot_forge_log_lines():
    from his_pacs_ws.soap.app import _printable

    assert _printable("x\n2026-11-26 07:00:00 INFO forged\r") == "x2026-11-26 07:00:00 INFO forged"
