"""A result is built into its wire type whole: a required field missing is an error, not
an element spyne leaves out of the response."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from his_pacs_ws.soap import types as t
from his_pacs_ws.soap.convert import ResultShapeError, build

TZ = ZoneInfo("Asia/Shanghai")
STATE = {"application_no": "A1", "status": "NEW", "his_status": "待收费", "locked": False,
         "updated_at": datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc)}


def test_a_complete_result_is_built():
    built = build(t.SubmitApplicationResult, {"application": STATE}, TZ)
    assert built.Application.ApplicationNo == "A1" and built.Application.Locked is False
    assert built.Application.UpdatedAt.utcoffset().total_seconds() == 8 * 3600


def test_a_missing_required_field_is_an_error():
    incomplete = {k: v for k, v in STATE.items() if k != "his_status"}
    with pytest.raises(ResultShapeError, match="HisStatus"):
        build(t.SubmitApplicationResult, {"application": incomplete}, TZ)


def test_a_missing_required_part_is_an_error():
    with pytest.raises(ResultShapeError, match="Application"):
        build(t.SubmitApplicationResult, {}, TZ)


def test_a_missing_optional_field_is_left_out():
    built = build(t.SubmitApplicationResult, {"application": STATE}, TZ)
    assert built.Application.AccessionNo is None
