"""Wire types of the v1 contract (``urn:his-pacs-ws:v1``). Names here are binding.

Every field goes through ``req`` or ``opt``: optional fields are minOccurs=0 and never
nillable (JAX-WS would wrap nillable optionals in JAXBElement), and restricted simple
types are named, so that generated clients get one ``Money`` type, not one per field.
"""

from __future__ import annotations

import decimal
from enum import Enum

from spyne import Array, Boolean, ComplexModel, Date, DateTime, Decimal, Integer32, Unicode

from his_pacs_ws.domain import billing, critical, emr, patients, reports, status, timeline

TNS = "urn:his-pacs-ws:v1"


def _simple(base, name: str, **restrictions):
    return base(type_name=name, __namespace__=TNS, **restrictions)


def _element(t, min_occurs: int, **attrs):
    """``t`` as an element with the given minOccurs, not nillable, keeping its type name.

    spyne's customize() turns a named restricted type into an anonymous derived one; put
    the name back so the schema refers to the named type.
    """
    c = t.customize(min_occurs=min_occurs, nillable=False, **attrs)
    if t.__type_name__ is not None and c.__type_name__ != t.__type_name__:
        c.__type_name__ = t.__type_name__
        c.__extends__ = t.__extends__
    return c


def req(t):
    return _element(t, 1)


def opt(t):
    return _element(t, 0)


def list_of(t, *, required: bool = False, entry: str | None = None):
    """A wrapper element holding one child per entry, named by the entry type, or for a
    list of enumeration values by what one entry is (``<Statuses><Status>``).

    The entries are minOccurs=0 even where the list is required: one array type serves
    every list of its entry type, and the service answers an empty required list with
    SchemaValidationError itself.
    """
    # Unbounded already, or spyne's Array customizes the entry type again (anonymously).
    array = Array(_element(t, 0, max_occurs=decimal.Decimal("inf")), member_name=entry or t.get_type_name())
    return req(array) if required else opt(array)


def enum(name: str, values: type[Enum]):
    """The enumeration ``name`` of a domain enum's values, in their order (the WSDL's)."""
    return _simple(Unicode, name, values=[member.value for member in values])


# Simple types
Code = _simple(Unicode, "Code", min_len=1, max_len=64)
Name = _simple(Unicode, "Name", min_len=1, max_len=100)
ShortText = _simple(Unicode, "ShortText", max_len=200)
Text = _simple(Unicode, "Text", max_len=20000)
MessageIdType = _simple(Unicode, "MessageId", min_len=1, max_len=64)
Money = _simple(Decimal, "Money", fraction_digits=2, total_digits=14, ge=0)
Quantity = _simple(Decimal, "Quantity", fraction_digits=3, total_digits=14, gt=0)
PageSize = _simple(Integer32, "PageSize", ge=1, le=500)
MaxDocuments = _simple(Integer32, "MaxDocuments", ge=1, le=1000)
Count = _simple(Integer32, "Count", ge=0)
Version = _simple(Integer32, "Version", ge=1)
Minutes = _simple(Decimal, "Minutes", fraction_digits=1, ge=0)
Url = _simple(Unicode, "Url", min_len=1, max_len=2000)
ImageUrl = _simple(Unicode, "ImageUrl", min_len=1, max_len=2000)
DocumentType = _simple(Unicode, "DocumentType", min_len=1, max_len=64)
DocumentContent = _simple(Unicode, "DocumentContent", max_len=1_000_000)
Phone = _simple(Unicode, "Phone", max_len=32)
ShortCode = _simple(Unicode, "ShortCode", min_len=1, max_len=32)
Modality = _simple(Unicode, "Modality", min_len=1, max_len=16)

Sex = enum("Sex", patients.Sex)
PatientTypeEnum = enum("PatientType", status.PatientType)
Priority = enum("Priority", status.Priority)
ApplicationStatus = enum("ApplicationStatus", status.Status)
EventSource = enum("EventSource", timeline.Source)
PacsStatusEvent = enum("PacsStatusEvent", status.PacsEvent)
ChargeTrigger = enum("ChargeTrigger", billing.Trigger)
RefundSourceEnum = enum("RefundSource", billing.RefundSource)
ResultStatusEnum = enum("ResultStatus", reports.ResultStatus)
CriticalValueStatus = enum("CriticalValueStatus", critical.CriticalStatus)
EmrScope = enum("EmrScope", emr.EmrScope)

class Model(ComplexModel):
    __namespace__ = TNS


# Shared types
class Staff(Model):
    _type_info = [("Code", req(Code)), ("Name", req(Name))]


class Patient(Model):
    _type_info = [
        ("PatientId", req(Code)),
        ("Name", req(Name)),
        ("Sex", req(Sex)),
        ("BirthDate", opt(Date)),
        ("IdCardNo", opt(ShortCode)),
        ("Phone", opt(Phone)),
    ]


class Visit(Model):
    _type_info = [
        ("VisitNo", req(Code)),
        ("PatientType", req(PatientTypeEnum)),
        ("VisitAt", opt(DateTime)),
        ("InpatientNo", opt(Code)),
        ("WardCode", opt(Code)),
        ("WardName", opt(Name)),
        ("BedNo", opt(ShortCode)),
        ("DepartmentCode", opt(Code)),
        ("DepartmentName", opt(Name)),
        ("Diagnosis", opt(Text)),
    ]


class ApplicationItem(Model):
    _type_info = [
        ("ItemCode", req(Code)),
        ("ItemName", req(ShortText)),
        ("Quantity", req(Quantity)),
        ("UnitPrice", req(Money)),
        ("Modality", opt(Modality)),
        ("BodyPart", opt(Name)),
    ]


# A package (组套) lists its lines as ApplicationItems; the service refuses deeper nesting.
ApplicationItem._type_info["Components"] = list_of(ApplicationItem)


class StatusEvent(Model):
    _type_info = [
        ("Status", req(ApplicationStatus)),
        ("OccurredAt", req(DateTime)),
        ("Operator", opt(Staff)),
        ("Source", req(EventSource)),
        ("Applied", req(Boolean)),
        ("Note", opt(Text)),
        ("Event", req(Code)),
        ("Room", opt(Code)),
    ]


class ApplicationState(Model):
    _type_info = [
        ("ApplicationNo", req(Code)),
        ("Status", req(ApplicationStatus)),
        ("HisStatus", req(Name)),
        ("Locked", req(Boolean)),
        ("AccessionNo", opt(Code)),
        ("UpdatedAt", req(DateTime)),
    ]


class ApplicationDetail(Model):
    _type_info = [
        *ApplicationState._type_info.items(),
        ("Patient", req(Patient)),
        ("Visit", req(Visit)),
        ("OrderingDoctor", req(Staff)),
        ("OrderingDepartmentCode", req(Code)),
        ("OrderingDepartmentName", opt(Name)),
        ("ExecutingDepartmentCode", req(Code)),
        ("ExecutingDepartmentName", opt(Name)),
        ("OrderedAt", req(DateTime)),
        ("Items", list_of(ApplicationItem, required=True)),
        ("ClinicalDiagnosis", opt(Text)),
        ("ClinicalHistory", opt(Text)),
        ("ExamPurpose", opt(Text)),
        ("Priority", opt(Priority)),
        ("TotalAmount", req(Money)),
        ("PaidAmount", opt(Money)),
        ("PaidAt", opt(DateTime)),
        ("InvoiceNo", opt(Code)),
    ]


class ChargeLine(Model):
    _type_info = [
        ("ChargeId", req(Code)),
        ("ApplicationNo", req(Code)),
        ("ItemCode", req(Code)),
        ("ItemName", req(ShortText)),
        ("Quantity", req(Quantity)),
        ("UnitPrice", req(Money)),
        ("Amount", req(Money)),
        ("RefundedQuantity", req(_simple(Decimal, "RefundedQuantity", fraction_digits=3, ge=0))),
        ("RefundedAmount", req(Money)),
        ("Trigger", req(ChargeTrigger)),
        ("ChargedAt", req(DateTime)),
        ("PackageItemCode", opt(Code)),
    ]


class RefundLine(Model):
    _type_info = [("ChargeId", req(Code)), ("Quantity", req(Quantity))]


class RefundRecord(Model):
    _type_info = [
        ("RefundRequestNo", opt(Code)),
        ("ChargeId", req(Code)),
        ("Quantity", req(Quantity)),
        ("Amount", req(Money)),
        ("Reason", opt(Text)),
        ("Operator", opt(Staff)),
        ("RefundedAt", req(DateTime)),
        ("Source", req(RefundSourceEnum)),
    ]


class Report(Model):
    _type_info = [
        ("ApplicationNo", req(Code)),
        ("AccessionNo", opt(Code)),
        ("ReportNo", req(Code)),
        ("Version", req(Version)),
        ("ResultStatus", req(ResultStatusEnum)),
        ("Findings", opt(Text)),
        ("Impression", opt(Text)),
        ("Positive", opt(Boolean)),
        ("ReportingDoctor", req(Staff)),
        ("ReportedAt", req(DateTime)),
        ("VerifyingDoctor", opt(Staff)),
        ("VerifiedAt", opt(DateTime)),
        ("StudyInstanceUid", opt(Code)),
        ("ViewerUrl", opt(Url)),
        ("ImageUrls", list_of(ImageUrl)),
        ("PdfUrl", opt(Url)),
    ]


class CriticalValue(Model):
    _type_info = [
        ("CriticalValueNo", req(Code)),
        ("ApplicationNo", req(Code)),
        ("PatientId", req(Code)),
        ("PatientName", req(Name)),
        ("DepartmentCode", req(Code)),
        ("Finding", req(Text)),
        ("Status", req(CriticalValueStatus)),
        ("ReportedBy", req(Staff)),
        ("ReviewedBy", opt(Staff)),
        ("ReportedAt", req(DateTime)),
        ("AckDeadline", req(DateTime)),
        ("ReceivedBy", opt(Staff)),
        ("ReceivedAt", opt(DateTime)),
        ("ReadBackConfirmed", req(Boolean)),
        ("HandledBy", opt(Staff)),
        ("HandledAt", opt(DateTime)),
        ("HandlingOpinion", opt(Text)),
        ("RevokedAt", opt(DateTime)),
        ("RevokeReason", opt(Text)),
        ("Overdue", req(Boolean)),
        ("MinutesToReceive", opt(Minutes)),
        ("MinutesToHandle", opt(Minutes)),
        ("ReportNo", opt(Code)),
        ("ContactPhone", opt(Phone)),
        ("RevokedBy", opt(Staff)),
    ]


class EmrDocument(Model):
    _type_info = [
        ("DocumentId", req(Code)),
        ("DocumentType", req(DocumentType)),
        ("Title", req(ShortText)),
        ("Content", req(DocumentContent)),
        ("AuthorName", opt(Name)),
        ("RecordedAt", req(DateTime)),
        ("Version", opt(Version)),
    ]


class EmrOrder(Model):
    _type_info = [
        ("OrderNo", req(Code)),
        ("OrderType", opt(Code)),
        ("Content", req(Text)),
        ("OrderedAt", req(DateTime)),
        ("Status", opt(Code)),
    ]


class EmrVisit(Model):
    _type_info = [
        ("VisitNo", req(Code)),
        ("PatientType", req(PatientTypeEnum)),
        ("VisitAt", opt(DateTime)),
        ("DepartmentName", opt(Name)),
        ("Diagnosis", opt(Text)),
        ("Documents", list_of(EmrDocument)),
        ("Orders", list_of(EmrOrder)),
    ]


class ServiceFault(Model):
    """The detail of every fault: a stable code, a readable message, whether to retry."""

    _type_info = [("Code", req(Code)), ("Message", req(Text)), ("Retryable", req(Boolean))]


# HisService requests and results
class SubmitApplicationRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("ApplicationNo", req(Code)),
        ("Patient", req(Patient)),
        ("Visit", req(Visit)),
        ("OrderingDoctor", req(Staff)),
        ("OrderingDepartmentCode", req(Code)),
        ("OrderingDepartmentName", opt(Name)),
        ("ExecutingDepartmentCode", req(Code)),
        ("ExecutingDepartmentName", opt(Name)),
        ("OrderedAt", req(DateTime)),
        ("Items", list_of(ApplicationItem, required=True)),
        ("ClinicalDiagnosis", opt(Text)),
        ("ClinicalHistory", opt(Text)),
        ("ExamPurpose", opt(Text)),
        ("Priority", opt(Priority)),
    ]


class SubmitApplicationResult(Model):
    _type_info = [("Application", req(ApplicationState))]


class ConfirmPaymentRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("ApplicationNo", req(Code)),
        ("Amount", req(Money)),
        ("PaidAt", req(DateTime)),
        ("InvoiceNo", opt(Code)),
    ]


class ConfirmPaymentResult(Model):
    _type_info = [("Application", req(ApplicationState))]


class SendInpatientOrderRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("ApplicationNo", req(Code)),
        ("Nurse", req(Staff)),
        ("SentAt", req(DateTime)),
    ]


class SendInpatientOrderResult(Model):
    _type_info = [("Application", req(ApplicationState)), ("Charges", list_of(ChargeLine))]


class CancelApplicationRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("ApplicationNo", req(Code)),
        ("Reason", req(Text)),
        ("Operator", req(Staff)),
        ("CancelledAt", req(DateTime)),
    ]


class CancelApplicationResult(Model):
    _type_info = [
        ("Application", req(ApplicationState)),
        ("RefundDue", req(Boolean)),
        ("ReversedCharges", list_of(ChargeLine)),
    ]


class GetApplicationRequest(Model):
    _type_info = [("ApplicationNo", req(Code))]


class GetApplicationResult(Model):
    _type_info = [
        ("Application", req(ApplicationDetail)),
        ("Timeline", list_of(StatusEvent)),
        ("Charges", list_of(ChargeLine)),
        ("Reports", list_of(Report)),
    ]


class QueryReportsRequest(Model):
    _type_info = [
        ("PatientId", opt(Code)),
        ("ApplicationNo", opt(Code)),
        ("IncludePrior", opt(Boolean)),
        ("IncludePreliminary", opt(Boolean)),
        ("From", opt(DateTime)),
        ("To", opt(DateTime)),
    ]


class QueryReportsResult(Model):
    _type_info = [("Reports", list_of(Report))]


class PublishEmrRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("PatientId", req(Code)),
        ("Visit", req(Visit)),
        ("Documents", list_of(EmrDocument, required=True)),
        ("Orders", list_of(EmrOrder)),
    ]


class PublishEmrResult(Model):
    _type_info = [
        ("PatientId", req(Code)),
        ("VisitNo", req(Code)),
        ("DocumentsStored", req(Count)),
        ("DocumentsIgnored", req(Count)),
        ("OrdersStored", req(Count)),
    ]


class QueryCriticalValuesRequest(Model):
    _type_info = [
        ("Statuses", list_of(CriticalValueStatus, entry="Status")),
        ("DepartmentCode", opt(Code)),
        ("PatientId", opt(Code)),
        ("ApplicationNo", opt(Code)),
        ("From", opt(DateTime)),
        ("To", opt(DateTime)),
        ("OverdueOnly", opt(Boolean)),
    ]


class QueryCriticalValuesResult(Model):
    _type_info = [("CriticalValues", list_of(CriticalValue))]


class AcknowledgeCriticalValueRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("CriticalValueNo", req(Code)),
        ("ReceivedBy", req(Staff)),
        ("ReceivedAt", req(DateTime)),
        ("ReadBackConfirmed", req(Boolean)),
    ]


class AcknowledgeCriticalValueResult(Model):
    _type_info = [("CriticalValue", req(CriticalValue))]


class RecordCriticalValueHandlingRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("CriticalValueNo", req(Code)),
        ("HandledBy", req(Staff)),
        ("HandledAt", req(DateTime)),
        ("HandlingOpinion", req(Text)),
    ]


class RecordCriticalValueHandlingResult(Model):
    _type_info = [("CriticalValue", req(CriticalValue))]


class QueryChargesRequest(Model):
    _type_info = [
        ("ApplicationNo", opt(Code)),
        ("PatientId", opt(Code)),
        ("VisitNo", opt(Code)),
        ("From", opt(DateTime)),
        ("To", opt(DateTime)),
    ]


class QueryChargesResult(Model):
    _type_info = [
        ("Charges", list_of(ChargeLine)),
        ("Refunds", list_of(RefundRecord)),
        ("TotalCharged", req(Money)),
        ("TotalRefunded", req(Money)),
    ]


class PingRequest(Model):
    _type_info = [("Echo", opt(ShortText))]


class PingResult(Model):
    _type_info = [
        ("ServiceVersion", req(Code)),
        ("ServerTime", req(DateTime)),
        ("Echo", opt(ShortText)),
    ]


# PacsService requests and results
class QueryApplicationsRequest(Model):
    _type_info = [
        ("ExecutingDepartmentCode", opt(Code)),
        ("Modality", opt(Modality)),
        ("PatientId", opt(Code)),
        ("PatientName", opt(Name)),
        ("ApplicationNo", opt(Code)),
        ("AccessionNo", opt(Code)),
        ("Statuses", list_of(ApplicationStatus, entry="Status")),
        ("From", opt(DateTime)),
        ("To", opt(DateTime)),
        ("PageSize", opt(PageSize)),
        ("PageToken", opt(Code)),
    ]


class QueryApplicationsResult(Model):
    _type_info = [
        ("Applications", list_of(ApplicationDetail)),
        ("NextPageToken", opt(Code)),
    ]


class ReportStatusRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("ApplicationNo", req(Code)),
        ("Status", req(PacsStatusEvent)),
        ("OccurredAt", req(DateTime)),
        ("Operator", req(Staff)),
        ("AccessionNo", opt(Code)),
        ("Room", opt(Code)),
        ("Note", opt(Text)),
    ]


class ReportStatusResult(Model):
    _type_info = [
        ("Application", req(ApplicationState)),
        ("Applied", req(Boolean)),
        ("Charges", list_of(ChargeLine)),
    ]


class ChargeRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("ChargeRequestNo", req(Code)),
        ("ApplicationNo", req(Code)),
        ("Items", list_of(ApplicationItem, required=True)),
        ("Operator", req(Staff)),
        ("ChargedAt", req(DateTime)),
    ]


class ChargeResult(Model):
    _type_info = [("Charges", list_of(ChargeLine))]


class RefundRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("RefundRequestNo", req(Code)),
        ("ApplicationNo", req(Code)),
        ("Lines", list_of(RefundLine, required=True)),
        ("Reason", req(Text)),
        ("Operator", req(Staff)),
        ("RequestedAt", req(DateTime)),
    ]


class RefundResult(Model):
    _type_info = [("Refunds", list_of(RefundRecord)), ("Charges", list_of(ChargeLine))]


class PushReportRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("ApplicationNo", req(Code)),
        ("ReportNo", req(Code)),
        ("ResultStatus", req(ResultStatusEnum)),
        ("ReportingDoctor", req(Staff)),
        ("ReportedAt", req(DateTime)),
        ("AccessionNo", opt(Code)),
        ("Findings", opt(Text)),
        ("Impression", opt(Text)),
        ("Positive", opt(Boolean)),
        ("VerifyingDoctor", opt(Staff)),
        ("VerifiedAt", opt(DateTime)),
        ("StudyInstanceUid", opt(Code)),
        ("ViewerUrl", opt(Url)),
        ("ImageUrls", list_of(ImageUrl)),
        ("PdfUrl", opt(Url)),
    ]


class PushReportResult(Model):
    _type_info = [
        ("Application", req(ApplicationState)),
        ("ReportVersion", req(Version)),
        ("Applied", req(Boolean)),
    ]


class RaiseCriticalValueRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("CriticalValueNo", req(Code)),
        ("ApplicationNo", req(Code)),
        ("Finding", req(Text)),
        ("ReportedBy", req(Staff)),
        ("ReportedAt", req(DateTime)),
        ("ReportNo", opt(Code)),
        ("ReviewedBy", opt(Staff)),
        ("ContactPhone", opt(Phone)),
    ]


class RaiseCriticalValueResult(Model):
    _type_info = [("CriticalValue", req(CriticalValue))]


class RevokeCriticalValueRequest(Model):
    _type_info = [
        ("MessageId", req(MessageIdType)),
        ("CriticalValueNo", req(Code)),
        ("Reason", req(Text)),
        ("Operator", req(Staff)),
    ]


class RevokeCriticalValueResult(Model):
    _type_info = [("CriticalValue", req(CriticalValue))]


class QueryEmrRequest(Model):
    _type_info = [
        ("PatientId", req(Code)),
        ("Scope", opt(EmrScope)),
        ("VisitNo", opt(Code)),
        ("ApplicationNo", opt(Code)),
        ("IncludeOrders", opt(Boolean)),
        ("DocumentTypes", list_of(DocumentType)),
        ("From", opt(DateTime)),
        ("To", opt(DateTime)),
        ("MaxDocuments", opt(MaxDocuments)),
        ("RequestedBy", opt(Staff)),
    ]


class QueryEmrResult(Model):
    _type_info = [
        ("PatientId", req(Code)),
        ("Visits", list_of(EmrVisit)),
        ("Truncated", req(Boolean)),
    ]
