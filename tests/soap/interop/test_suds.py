"""suds (suds-community): the other Python SOAP stack hospital scripts use. It loads the
served WSDL and walks FLOW.md with a PasswordText UsernameToken carrying a nonce."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from suds import WebFault
from suds.client import Client
from suds.wsse import Security, UsernameToken

from tests.soap.conftest import HIS_PASSWORD, HIS_USER, PACS_PASSWORD, PACS_USER


def signed(client: Client, user: str, password: str) -> Client:
    """A fresh token for the next call: the service accepts each nonce once."""
    security = Security()
    token = UsernameToken(user, password)
    token.setnonce(uuid.uuid4().hex)
    token.setcreated()
    security.tokens.append(token)
    client.set_options(wsse=security)
    return client


def fault_parts(fault: WebFault) -> tuple[str, str]:
    detail = fault.fault.detail.ServiceFault
    return fault.fault.faultcode, detail.Code


@pytest.fixture(scope="module")
def clients(base_url):
    return Client(f"{base_url}/ws/his?wsdl", cache=None), Client(f"{base_url}/ws/pacs?wsdl", cache=None)


def test_suds_walks_the_flow(clients):
    his, pacs = clients
    suffix = uuid.uuid4().hex[:10]
    no = f"IOP-SUDS-{suffix}"
    tz = timezone(timedelta(hours=8))

    def staff(factory, code, name):
        s = factory.create("Staff")
        s.Code, s.Name = code, name
        return s

    request = his.factory.create("SubmitApplicationRequest")
    request.MessageId, request.ApplicationNo = f"M1-{suffix}", no
    request.Patient.PatientId, request.Patient.Name, request.Patient.Sex = f"P-{suffix}", "张三", "M"
    request.Visit.VisitNo, request.Visit.PatientType = f"V-{suffix}", "OUTPATIENT"
    request.OrderingDoctor = staff(his.factory, "D001", "王医生")
    request.OrderingDepartmentCode, request.ExecutingDepartmentCode = "NK", "CT"
    request.OrderedAt = datetime(2026, 11, 26, 9, 0, tzinfo=tz)
    items = []
    for code, name, quantity, price in (("CT001", "头颅CT平扫", "1", "150.50"), ("FILM", "胶片", "2", "10.25")):
        item = his.factory.create("ApplicationItem")
        item.ItemCode, item.ItemName, item.Quantity, item.UnitPrice = code, name, Decimal(quantity), Decimal(price)
        items.append(item)
    request.Items.ApplicationItem = items
    state = signed(his, HIS_USER, HIS_PASSWORD).service.SubmitApplication(request).Application
    assert (state.Status, state.HisStatus) == ("NEW", "待收费")

    state = signed(his, HIS_USER, HIS_PASSWORD).service.ConfirmPayment(
        {"MessageId": f"M2-{suffix}", "ApplicationNo": no, "Amount": Decimal("171.00"),
         "PaidAt": datetime(2026, 11, 26, 9, 5, tzinfo=tz)}).Application
    assert state.Status == "RELEASED"

    found = signed(pacs, PACS_USER, PACS_PASSWORD).service.QueryApplications({"ApplicationNo": no})
    [detail] = found.Applications.ApplicationDetail
    assert detail.Patient.Name == "张三"
    assert len(detail.Items.ApplicationItem) == 2
    assert Decimal(str(detail.Items.ApplicationItem[0].UnitPrice)) == Decimal("150.50")
    assert str(detail.TotalAmount) == "171.00"

    registered = signed(pacs, PACS_USER, PACS_PASSWORD).service.ReportStatus(
        {"MessageId": f"M3-{suffix}", "ApplicationNo": no, "Status": "REGISTERED",
         "OccurredAt": datetime(2026, 11, 26, 9, 20, tzinfo=tz), "Operator": {"Code": "R001", "Name": "登记员"},
         "AccessionNo": f"ACC-{suffix}"})
    assert registered.Application.Locked is True

    with pytest.raises(WebFault) as locked:
        signed(his, HIS_USER, HIS_PASSWORD).service.CancelApplication(
            {"MessageId": f"M4-{suffix}", "ApplicationNo": no, "Reason": "患者拒绝",
             "Operator": {"Code": "D001", "Name": "王医生"}, "CancelledAt": datetime(2026, 11, 26, 9, 30, tzinfo=tz)})
    faultcode, code = fault_parts(locked.value)
    assert faultcode.endswith("Client.ApplicationLocked") and code == "ApplicationLocked"

    got = signed(his, HIS_USER, HIS_PASSWORD).service.GetApplication({"ApplicationNo": no})
    assert [e.Event for e in got.Timeline.StatusEvent] == ["SUBMITTED", "PAID", "REGISTERED"]
    assert sorted(str(c.Amount) for c in got.Charges.ChargeLine) == ["150.50", "20.50"]
    assert got.Application.UpdatedAt.utcoffset() == timedelta(hours=8)

    with pytest.raises(WebFault) as refused:
        signed(his, HIS_USER, "not-the-password").service.Ping()
    assert refused.value.fault.faultcode.endswith("Client.AuthenticationFailed")
