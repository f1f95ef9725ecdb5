"""The clinical half over SOAP: reports and images, the critical-value loop, EMR."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from zeep.exceptions import Fault

from tests.soap.conftest import DOCTOR, NURSE, T0, TNS, application_request, fault_code, security_header, unique

RADIOLOGIST = {"Code": "RAD01", "Name": "赵医生"}
CHIEF = {"Code": "RAD09", "Name": "钱主任"}


def released(his, **kwargs):
    """A submitted application, paid (or, for an inpatient, sent by the nurse)."""
    request = application_request(**kwargs)
    his.SubmitApplication(request=request)
    if request["Visit"]["PatientType"] == "INPATIENT":
        his.SendInpatientOrder(request={"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                                        "Nurse": NURSE, "SentAt": T0 + timedelta(minutes=5)})
    else:
        his.ConfirmPayment(request={"MessageId": unique("M"), "ApplicationNo": request["ApplicationNo"],
                                    "Amount": Decimal("150.00"), "PaidAt": T0 + timedelta(minutes=5)})
    return request


def push(pacs, no, status, report_no, minutes=60, **extra):
    request = {"MessageId": unique("M"), "ApplicationNo": no, "ReportNo": report_no, "ResultStatus": status,
               "ReportingDoctor": RADIOLOGIST, "ReportedAt": T0 + timedelta(minutes=minutes),
               "Findings": "左侧额叶见片状低密度影", "Impression": "考虑脑梗死", **extra}
    if status in ("FINAL", "CORRECTED"):
        request.setdefault("VerifyingDoctor", CHIEF)
        request.setdefault("VerifiedAt", T0 + timedelta(minutes=minutes + 5))
        request.setdefault("Positive", False)
    return pacs.PushReport(request=request)


def test_report_and_images_reach_the_clinician(his, pacs):
    no = released(his)["ApplicationNo"]
    report_no = unique("R")
    preliminary = push(pacs, no, "PRELIMINARY", report_no)
    assert (preliminary.Application.Status, preliminary.ReportVersion) == ("REPORTED", 1)
    final = push(pacs, no, "FINAL", report_no, minutes=70, StudyInstanceUid="1.2.840.1.2.3",
                 ViewerUrl="https://pacs.example/viewer?acc=1", PdfUrl="https://pacs.example/r.pdf",
                 ImageUrls={"ImageUrl": ["https://pacs.example/wado/1.jpg", "https://pacs.example/wado/2.jpg"]},
                 Positive=True)
    assert (final.Application.Status, final.Application.HisStatus, final.ReportVersion) == ("VERIFIED", "已完成", 2)
    [report] = his.QueryReports(request={"ApplicationNo": no}).Report  # zeep unwraps the one field
    assert (report.Version, report.ResultStatus, report.VerifyingDoctor.Name) == (2, "FINAL", "钱主任")
    assert report.ImageUrls.ImageUrl == ["https://pacs.example/wado/1.jpg", "https://pacs.example/wado/2.jpg"]
    assert report.ReportedAt.utcoffset() == timedelta(hours=8)
    assert his.GetApplication(request={"ApplicationNo": no}).Reports.Report[0].ReportNo == report_no


def test_report_lists_are_named_by_entry(base_url, his, pacs):
    no = released(his)["ApplicationNo"]
    push(pacs, no, "FINAL", unique("R"), ImageUrls={"ImageUrl": ["https://pacs.example/1.jpg"]})
    body = f"""<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v="{TNS}">
    {security_header()}<soapenv:Body>
    <v:QueryReports><v:request><v:ApplicationNo>{no}</v:ApplicationNo></v:request></v:QueryReports>
    </soapenv:Body></soapenv:Envelope>""".encode()
    answer = requests.post(f"{base_url}/ws/his", data=body, timeout=10,
                           headers={"Content-Type": "text/xml; charset=utf-8"}).content
    assert b"<tns:Reports><tns:Report>" in answer
    assert b"<tns:ImageUrls><tns:ImageUrl>https://pacs.example/1.jpg</tns:ImageUrl></tns:ImageUrls>" in answer


def test_correction_and_the_returning_patient(his, pacs):
    first = released(his)
    report_no = unique("R")
    push(pacs, first["ApplicationNo"], "FINAL", report_no, minutes=60)
    corrected = push(pacs, first["ApplicationNo"], "CORRECTED", report_no, minutes=90, Impression="陈旧性脑梗死")
    assert (corrected.ReportVersion, corrected.Application.Status) == (2, "VERIFIED")
    with pytest.raises(Fault) as twice:
        push(pacs, first["ApplicationNo"], "FINAL", report_no, minutes=95, Impression="又改")
    assert fault_code(twice.value) == "InvalidTransition"
    again = released(his, Patient=first["Patient"])  # the patient returns
    prior = his.QueryReports(request={"ApplicationNo": again["ApplicationNo"]}).Report
    assert [(r.ApplicationNo, r.Version, r.Impression) for r in prior] == [(first["ApplicationNo"], 2, "陈旧性脑梗死")]
    assert his.QueryReports(request={"ApplicationNo": again["ApplicationNo"], "IncludePrior": False}) is None


def test_final_without_verification_is_a_schema_fault(his, pacs):
    no = released(his)["ApplicationNo"]
    with pytest.raises(Fault) as missing:
        pacs.PushReport(request={"MessageId": unique("M"), "ApplicationNo": no, "ReportNo": unique("R"),
                                 "ResultStatus": "FINAL", "ReportingDoctor": RADIOLOGIST, "ReportedAt": T0})
    assert fault_code(missing.value) == "SchemaValidationError"
    assert his.GetApplication(request={"ApplicationNo": no}).Reports is None


def test_an_issued_report_must_say_whether_it_is_positive(his, pacs):
    """A .NET PACS that forgets PositiveSpecified sends no Positive: refused, naming the
    element, rather than stored as a report that is neither 阳性 nor 阴性."""
    no = released(his)["ApplicationNo"]
    request = {"MessageId": unique("M"), "ApplicationNo": no, "ReportNo": unique("R"), "ResultStatus": "FINAL",
               "ReportingDoctor": RADIOLOGIST, "ReportedAt": T0, "VerifyingDoctor": CHIEF, "VerifiedAt": T0}
    with pytest.raises(Fault) as missing:
        pacs.PushReport(request=request)
    assert fault_code(missing.value) == "SchemaValidationError"
    assert "Element 'Positive'" in missing.value.message
    assert his.GetApplication(request={"ApplicationNo": no}).Reports is None
    preliminary = push(pacs, no, "PRELIMINARY", unique("R"))  # a draft may leave it open
    assert preliminary.ReportVersion == 1
    final = push(pacs, no, "FINAL", unique("R"), Positive=True)
    [report] = [r for r in his.GetApplication(request={"ApplicationNo": no}).Reports.Report
                if r.Version == final.ReportVersion and r.ResultStatus == "FINAL"]
    assert report.Positive is True


def test_the_critical_value_loop(his, pacs):
    no = released(his)["ApplicationNo"]
    number = unique("CV")
    reported_at = datetime.now(timezone.utc) - timedelta(minutes=1)  # inside the 2-minute deadline
    raised = pacs.RaiseCriticalValue(request={
        "MessageId": unique("M"), "CriticalValueNo": number, "ApplicationNo": no,
        "Finding": "大面积脑梗死，中线移位", "ReportedBy": RADIOLOGIST, "ReviewedBy": CHIEF,
        "ReportedAt": reported_at, "ContactPhone": "8001"})
    assert (raised.Status, raised.Overdue, raised.PatientName) == ("RAISED", False, "小明")
    assert raised.AckDeadline - raised.ReportedAt == timedelta(minutes=2)  # the test server's deadline
    with pytest.raises(Fault) as no_read_back:
        his.AcknowledgeCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": number,
                                              "ReceivedBy": NURSE, "ReceivedAt": reported_at + timedelta(minutes=2),
                                              "ReadBackConfirmed": False})
    assert fault_code(no_read_back.value) == "InvalidTransition"
    received = his.AcknowledgeCriticalValue(request={
        "MessageId": unique("M"), "CriticalValueNo": number, "ReceivedBy": NURSE,
        "ReceivedAt": reported_at + timedelta(minutes=2), "ReadBackConfirmed": True})
    assert (received.Status, received.MinutesToReceive) == ("RECEIVED", Decimal("2.0"))
    handled = his.RecordCriticalValueHandling(request={
        "MessageId": unique("M"), "CriticalValueNo": number, "HandledBy": DOCTOR,
        "HandledAt": reported_at + timedelta(minutes=3), "HandlingOpinion": "急请神经外科会诊"})
    assert (handled.Status, handled.MinutesToHandle) == ("HANDLED", Decimal("3.0"))
    [seen] = pacs.QueryCriticalValues(request={"ApplicationNo": no}).CriticalValue
    assert (seen.Status, seen.ReceivedBy.Name, seen.HandledBy.Name, seen.HandlingOpinion) == (
        "HANDLED", "李护士", "王医生", "急请神经外科会诊")
    with pytest.raises(Fault) as late_revoke:
        pacs.RevokeCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": number,
                                          "Reason": "误报", "Operator": CHIEF})
    assert fault_code(late_revoke.value) == "InvalidTransition"


def test_calls_about_a_critical_value_are_recorded_with_its_application(his, pacs, engine):
    from sqlalchemy import select

    from his_pacs_ws.db.models import CallRecord

    no = released(his)["ApplicationNo"]
    number = unique("CV")
    pacs.RaiseCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": number, "ApplicationNo": no,
                                     "Finding": "气胸", "ReportedBy": RADIOLOGIST, "ReportedAt": T0})
    his.AcknowledgeCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": number, "ReceivedBy": NURSE,
                                          "ReceivedAt": T0 + timedelta(minutes=2), "ReadBackConfirmed": True})
    with engine.connect() as conn:
        operations = conn.execute(select(CallRecord.operation).where(CallRecord.application_no == no)).scalars().all()
    assert {"RaiseCriticalValue", "AcknowledgeCriticalValue"} <= set(operations)


def test_overdue_and_revoked_values(his, pacs):
    no = released(his)["ApplicationNo"]
    waiting, mistaken = unique("CV"), unique("CV")
    for number, minutes_ago in ((waiting, 3), (mistaken, 1)):  # the deadline is 2 minutes
        pacs.RaiseCriticalValue(request={
            "MessageId": unique("M"), "CriticalValueNo": number, "ApplicationNo": no, "Finding": "气胸",
            "ReportedBy": RADIOLOGIST, "ReportedAt": datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)})
    revoked = pacs.RevokeCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": mistaken,
                                                "Reason": "误报：与旧片对比为陈旧病灶", "Operator": CHIEF})
    assert (revoked.Status, revoked.RevokedBy.Name) == ("REVOKED", "钱主任")
    overdue = his.QueryCriticalValues(request={"ApplicationNo": no, "OverdueOnly": True}).CriticalValue
    assert [(cv.CriticalValueNo, cv.Overdue) for cv in overdue] == [(waiting, True)]
    raised = his.QueryCriticalValues(request={"ApplicationNo": no, "Statuses": {"Status": ["RAISED"]}}).CriticalValue
    assert [cv.CriticalValueNo for cv in raised] == [waiting]


def test_critical_value_faults(his, pacs):
    with pytest.raises(Fault) as unknown:
        his.RecordCriticalValueHandling(request={"MessageId": unique("M"), "CriticalValueNo": unique("CV"),
                                                 "HandledBy": DOCTOR, "HandledAt": T0, "HandlingOpinion": "x"})
    assert fault_code(unknown.value) == "CriticalValueNotFound"
    unpaid = application_request()
    his.SubmitApplication(request=unpaid)
    with pytest.raises(Fault) as unseen:
        pacs.RaiseCriticalValue(request={"MessageId": unique("M"), "CriticalValueNo": unique("CV"),
                                         "ApplicationNo": unpaid["ApplicationNo"], "Finding": "x",
                                         "ReportedBy": RADIOLOGIST, "ReportedAt": T0})
    assert fault_code(unseen.value) == "ApplicationNotFound"
    no = released(his)["ApplicationNo"]
    number = unique("CV")
    raise_request = {"MessageId": unique("M"), "CriticalValueNo": number, "ApplicationNo": no, "Finding": "气胸",
                     "ReportedBy": RADIOLOGIST, "ReportedAt": T0}
    pacs.RaiseCriticalValue(request=raise_request)
    with pytest.raises(Fault) as exists:
        pacs.RaiseCriticalValue(request={**raise_request, "MessageId": unique("M"), "Finding": "血气胸"})
    assert fault_code(exists.value) == "CriticalValueExists"


def test_emr_published_and_read(his, pacs):
    application = released(his, patient_type="INPATIENT")
    patient_id = application["Patient"]["PatientId"]
    old_visit = {"VisitNo": unique("V"), "PatientType": "OUTPATIENT", "VisitAt": T0 - timedelta(days=300),
                 "DepartmentName": "神经内科门诊"}
    his.PublishEmr(request={"MessageId": unique("M"), "PatientId": patient_id, "Visit": old_visit,
                            "Documents": {"EmrDocument": [{"DocumentId": unique("D"), "DocumentType": "门诊病历",
                                                           "Title": "门诊病历", "Content": "偏头痛",
                                                           "RecordedAt": T0 - timedelta(days=300)}]}})
    document_id = unique("D")
    stored = his.PublishEmr(request={
        "MessageId": unique("M"), "PatientId": patient_id, "Visit": {**application["Visit"], "VisitAt": T0},
        "Documents": {"EmrDocument": [
            {"DocumentId": document_id, "DocumentType": "入院记录", "Title": "入院记录", "Content": "主诉：头痛3天",
             "RecordedAt": T0, "AuthorName": "王医生", "Version": 1},
            {"DocumentId": unique("D"), "DocumentType": "病程记录", "Title": "首次病程记录", "Content": "诊疗计划",
             "RecordedAt": T0 + timedelta(hours=1)}]},
        "Orders": {"EmrOrder": [{"OrderNo": unique("O"), "Content": "头颅CT平扫", "OrderedAt": T0}]}})
    assert (stored.DocumentsStored, stored.DocumentsIgnored, stored.OrdersStored) == (2, 0, 1)
    current = pacs.QueryEmr(request={"PatientId": patient_id, "ApplicationNo": application["ApplicationNo"],
                                     "IncludeOrders": True, "RequestedBy": RADIOLOGIST})
    [visit] = current.Visits.EmrVisit
    assert [d.DocumentType for d in visit.Documents.EmrDocument] == ["入院记录", "病程记录"]
    assert [o.Content for o in visit.Orders.EmrOrder] == ["头颅CT平扫"]
    everything = pacs.QueryEmr(request={"PatientId": patient_id, "Scope": "ALL_VISITS"})
    assert [v.VisitNo for v in everything.Visits.EmrVisit] == [application["Visit"]["VisitNo"], old_visit["VisitNo"]]
    with pytest.raises(Fault) as unknown:
        pacs.QueryEmr(request={"PatientId": unique("P")})
    assert fault_code(unknown.value) == "PatientNotFound"
