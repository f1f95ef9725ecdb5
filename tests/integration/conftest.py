"""The integration tier: use cases called directly, on the real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.domain.billing import ChargePoint
from his_pacs_ws.services import applications, critical_values, emr, ledger, reports, worklist

HIS = Caller("HIS", Role.HIS)
PACS = Caller("PACS", Role.PACS)
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=timezone(timedelta(hours=8)))
DOCTOR = {"code": "D001", "name": "王医生"}
NURSE = {"code": "N001", "name": "李护士"}
CLERK = {"code": "R001", "name": "登记员"}
RADIOLOGIST = {"code": "RAD01", "name": "赵医生"}
CHIEF = {"code": "RAD09", "name": "钱主任"}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def item(code="CT001", name="头颅CT平扫", quantity="1", price="150.00", components=None, modality="CT"):
    data = {"item_code": code, "item_name": name, "quantity": Decimal(quantity),
            "unit_price": Decimal(price), "modality": modality}
    if components:
        data["components"] = components
    return data


class Hospital:
    """A HIS and a PACS acting through the use cases, with fresh keys for every request."""

    def __init__(self, sessions, settings: Settings):
        self.sessions = sessions
        self.settings = settings

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions)

    def submit_request(self, patient_type="OUTPATIENT", items=None, executing="CT", **overrides) -> dict:
        request = {
            "message_id": unique("M"),
            "application_no": unique("A"),
            "patient": {"patient_id": unique("P"), "name": "小明", "sex": "M"},
            "visit": {"visit_no": unique("V"), "patient_type": patient_type},
            "ordering_doctor": DOCTOR,
            "ordering_department_code": "NK",
            "executing_department_code": executing,
            "ordered_at": T0,
            "items": items or [item()],
        }
        request.update(overrides)
        return request

    def submit(self, **kwargs) -> str:
        request = self.submit_request(**kwargs)
        applications.submit_application(self.uow(), self.settings, HIS, request)
        return request["application_no"]

    def pay(self, application_no, amount="150.00", message_id=None):
        return applications.confirm_payment(self.uow(), self.settings, HIS, {
            "message_id": message_id or unique("M"), "application_no": application_no,
            "amount": Decimal(amount), "paid_at": T0 + timedelta(minutes=5)})

    def send(self, application_no, message_id=None):
        return applications.send_inpatient_order(self.uow(), self.settings, HIS, {
            "message_id": message_id or unique("M"), "application_no": application_no,
            "nurse": NURSE, "sent_at": T0 + timedelta(minutes=5)})

    def cancel(self, application_no, message_id=None):
        return applications.cancel_application(self.uow(), self.settings, HIS, {
            "message_id": message_id or unique("M"), "application_no": application_no,
            "reason": "患者拒绝检查", "operator": DOCTOR, "cancelled_at": T0 + timedelta(minutes=10)})

    def pacs(self, application_no, status, *, minutes=20, message_id=None, **extra):
        request = {"message_id": message_id or unique("M"), "application_no": application_no,
                   "status": status, "occurred_at": T0 + timedelta(minutes=minutes),
                   "operator": CLERK}
        if status == "REGISTERED":
            request["accession_no"] = extra.pop("accession_no", unique("ACC"))
        request.update(extra)
        return worklist.report_status(self.uow(), self.settings, PACS, request)

    def charge(self, application_no, items, *, request_no=None, message_id=None):
        return ledger.charge(self.uow(), self.settings, PACS, {
            "message_id": message_id or unique("M"), "charge_request_no": request_no or unique("C"),
            "application_no": application_no, "items": items, "operator": CLERK,
            "charged_at": T0 + timedelta(minutes=30)})

    def refund(self, application_no, lines, *, request_no=None, message_id=None):
        return ledger.refund(self.uow(), self.settings, PACS, {
            "message_id": message_id or unique("M"), "refund_request_no": request_no or unique("R"),
            "application_no": application_no,
            "lines": [{"charge_id": cid, "quantity": Decimal(q)} for cid, q in lines],
            "reason": "设备故障，科主任批准免费", "operator": CLERK,
            "requested_at": T0 + timedelta(minutes=40)})

    def get(self, application_no):
        return applications.get_application(self.uow(), self.settings, HIS, {"application_no": application_no})

    def status(self, application_no) -> str:
        return self.get(application_no)["application"]["status"]

    def worklist(self, **request):
        return worklist.query_applications(self.uow(), self.settings, PACS, request)

    def charges(self, **request):
        return ledger.query_charges(self.uow(), self.settings, HIS, request)

    def released(self, **kwargs) -> str:
        """An outpatient application, paid: on the PACS worklist."""
        no = self.submit(**kwargs)
        self.pay(no)
        return no

    def push(self, application_no, result_status, *, report_no=None, minutes=60, message_id=None, **extra):
        request = {"message_id": message_id or unique("M"), "application_no": application_no,
                   "report_no": report_no or f"R-{application_no}", "result_status": result_status,
                   "reporting_doctor": RADIOLOGIST, "reported_at": T0 + timedelta(minutes=minutes),
                   "findings": "左侧额叶见片状低密度影", "impression": "考虑脑梗死"}
        if result_status in ("FINAL", "CORRECTED"):
            request.update(verifying_doctor=CHIEF, verified_at=T0 + timedelta(minutes=minutes + 5), positive=False)
        request.update(extra)
        return reports.push_report(self.uow(), self.settings, PACS, request)

    def reports(self, **request):
        return reports.query_reports(self.uow(), self.settings, HIS, request)

    def raise_cv(self, application_no, *, number=None, minutes=60, message_id=None, **extra):
        request = {"message_id": message_id or unique("M"), "critical_value_no": number or unique("CV"),
                   "application_no": application_no, "finding": "大面积脑梗死，中线移位",
                   "reported_by": RADIOLOGIST, "reviewed_by": CHIEF,
                   "reported_at": T0 + timedelta(minutes=minutes)}
        request.update(extra)
        return critical_values.raise_critical_value(self.uow(), self.settings, PACS, request)

    def acknowledge(self, number, *, minutes=65, read_back=True, message_id=None):
        return critical_values.acknowledge(self.uow(), self.settings, HIS, {
            "message_id": message_id or unique("M"), "critical_value_no": number,
            "received_by": NURSE, "received_at": T0 + timedelta(minutes=minutes),
            "read_back_confirmed": read_back})

    def handle(self, number, *, minutes=80, message_id=None):
        return critical_values.record_handling(self.uow(), self.settings, HIS, {
            "message_id": message_id or unique("M"), "critical_value_no": number,
            "handled_by": DOCTOR, "handled_at": T0 + timedelta(minutes=minutes),
            "handling_opinion": "已请神经内科会诊，予脱水降颅压"})

    def revoke(self, number, *, message_id=None):
        return critical_values.revoke(self.uow(), self.settings, PACS, {
            "message_id": message_id or unique("M"), "critical_value_no": number,
            "reason": "误报：与既往片对比为陈旧病灶", "operator": CHIEF})

    def critical_values(self, **request):
        return critical_values.query_critical_values(self.uow(), self.settings, HIS, request)

    def publish(self, patient_id, visit, documents=(), orders=(), message_id=None):
        return emr.publish_emr(self.uow(), self.settings, HIS, {
            "message_id": message_id or unique("M"), "patient_id": patient_id, "visit": visit,
            "documents": list(documents), "orders": list(orders)})

    def emr(self, patient_id, **request):
        return emr.query_emr(self.uow(), self.settings, PACS, {"patient_id": patient_id, **request})


@pytest.fixture
def hospital(sessions):
    return Hospital(sessions, Settings())


@pytest.fixture
def register_charging(sessions):
    """A hospital whose MR department charges at PACS registration."""
    return Hospital(sessions, Settings(charge_point_by_department={"MR": ChargePoint.PACS_REGISTER}))
