"""The two SOAP services. Each operation converts its request to plain data, runs one use
case, and converts the result back; errors become faults in one place, ``invoke``."""

from __future__ import annotations

import logging
import traceback
from datetime import datetime
from typing import Callable

from spyne import ServiceBase, rpc

from his_pacs_ws import __version__
from his_pacs_ws.config import Settings
from his_pacs_ws.domain.access import Caller
from his_pacs_ws.domain.errors import ServiceError
from his_pacs_ws.services import applications, critical_values, emr, ledger, reports, worklist
from his_pacs_ws.services.context import Context
from his_pacs_ws.services.messages import Replayed
from his_pacs_ws.soap import types as t
from his_pacs_ws.soap.call import Call
from his_pacs_ws.soap.convert import PlainRequest, build, response_envelope, to_plain
from his_pacs_ws.soap.faults import from_error, internal_error
from his_pacs_ws.soap.types import opt, req

log = logging.getLogger(__name__)

# Declared on every operation, so generated clients bind the ServiceFault detail.
FAULTS = [t.ServiceFault]


def _safe_traceback(exc: BaseException) -> str:
    """Where it failed, without the exception's message (which may quote patient data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))


def invoke(ctx, use_case: Callable, request, result_type):
    runtime: Context = ctx.app.runtime
    call: Call = ctx.udc
    settings = runtime.settings
    # Noted before the conversion, which may refuse a value: the call record still says what
    # the call was about.
    if not isinstance(request, PlainRequest):  # spyne deserialized it (see plain_request)
        call.message_id = _text(getattr(request, "MessageId", None))
        call.application_no = _text(getattr(request, "ApplicationNo", None))
    try:
        if isinstance(request, PlainRequest):
            plain: dict = request
        else:
            plain = to_plain(request, type(request), settings.tz) if request is not None else {}
        call.note_request(plain)
        call.transaction = runtime.uow().hold_commit()  # committed with the call's record
        result = use_case(call.transaction, settings, call.caller, plain)
    except ServiceError as err:
        raise from_error(err) from None
    except Exception as exc:  # the edge: nothing unexpected leaves without a clean fault
        log.error(
            "internal error in %s (caller %s, MessageId %s): %s at %s",
            call.operation, call.caller, call.message_id, type(exc).__name__, _safe_traceback(exc),
        )
        raise internal_error() from None
    call.replayed = isinstance(result, Replayed)
    call.note_subject(result)
    # The answer written straight from the result, unless something in it is unusual
    answer = response_envelope(ctx.out_protocol, ctx.descriptor.out_message, result, settings.tz)
    if answer is not None:
        ctx.out_string = [answer]  # spyne sends it as it is
        return None
    return build(result_type, result, settings.tz)


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def ping(uow, settings: Settings, caller: Caller, request: dict) -> dict:
    return {
        "service_version": __version__,
        "server_time": datetime.now(settings.tz),
        "echo": request.get("echo"),
    }


def operation(request_type, result_type, *, optional_request: bool = False):
    """@rpc for the contract's shape: one parameter ``request``, one ``<Op>Result``."""
    return rpc(
        (opt if optional_request else req)(request_type),
        _returns=req(result_type),
        _throws=FAULTS,
        _body_style="wrapped",
    )


class HisService(ServiceBase):
    """Called by HIS: orders, payment, the nurse's send, cancellation, reading back, critical
    values and EMR publishing."""

    @operation(t.SubmitApplicationRequest, t.SubmitApplicationResult)
    def SubmitApplication(ctx, request):
        """提交检查申请单（状态 NEW）/ Submit an exam application (status NEW)."""
        return invoke(ctx, applications.submit_application, request, t.SubmitApplicationResult)

    @operation(t.ConfirmPaymentRequest, t.ConfirmPaymentResult)
    def ConfirmPayment(ctx, request):
        """门诊缴费确认，申请单发布到 PACS / Confirm the outpatient payment; releases the application to PACS."""
        return invoke(ctx, applications.confirm_payment, request, t.ConfirmPaymentResult)

    @operation(t.SendInpatientOrderRequest, t.SendInpatientOrderResult)
    def SendInpatientOrder(ctx, request):
        """护士发送住院医嘱，申请单发布到 PACS，可能计费 / The nurse sends an inpatient order: releases it to PACS, may charge."""
        return invoke(ctx, applications.send_inpatient_order, request, t.SendInpatientOrderResult)

    @operation(t.CancelApplicationRequest, t.CancelApplicationResult)
    def CancelApplication(ctx, request):
        """登记前撤销申请单，冲销已计费用 / Cancel an application before registration; reverses its charges."""
        return invoke(ctx, applications.cancel_application, request, t.CancelApplicationResult)

    @operation(t.GetApplicationRequest, t.GetApplicationResult)
    def GetApplication(ctx, request):
        """读取申请单、时间线、费用与报告 / Read an application with its timeline, charges and reports."""
        return invoke(ctx, applications.get_application, request, t.GetApplicationResult)

    @operation(t.QueryChargesRequest, t.QueryChargesResult)
    def QueryCharges(ctx, request):
        """查询计费与退费流水 / Query the charge and refund ledger."""
        return invoke(ctx, ledger.query_charges, request, t.QueryChargesResult)

    @operation(t.QueryReportsRequest, t.QueryReportsResult)
    def QueryReports(ctx, request):
        """查询检查报告（默认含既往报告）/ Query exam reports (earlier ones included by default)."""
        return invoke(ctx, reports.query_reports, request, t.QueryReportsResult)

    @operation(t.PublishEmrRequest, t.PublishEmrResult)
    def PublishEmr(ctx, request):
        """发布病历文书与医嘱，供 PACS 调阅 / Publish EMR documents and orders for PACS to read."""
        return invoke(ctx, emr.publish_emr, request, t.PublishEmrResult)

    @operation(t.QueryCriticalValuesRequest, t.QueryCriticalValuesResult)
    def QueryCriticalValues(ctx, request):
        """查询危急值及其闭环进度 / Query critical values and their closed-loop progress."""
        return invoke(ctx, critical_values.query_critical_values, request, t.QueryCriticalValuesResult)

    @operation(t.AcknowledgeCriticalValueRequest, t.AcknowledgeCriticalValueResult)
    def AcknowledgeCriticalValue(ctx, request):
        """接收危急值（复述确认）/ Acknowledge a critical value (read back)."""
        return invoke(ctx, critical_values.acknowledge, request, t.AcknowledgeCriticalValueResult)

    @operation(t.RecordCriticalValueHandlingRequest, t.RecordCriticalValueHandlingResult)
    def RecordCriticalValueHandling(ctx, request):
        """记录危急值处理意见 / Record how a critical value was handled."""
        return invoke(ctx, critical_values.record_handling, request, t.RecordCriticalValueHandlingResult)

    @operation(t.PingRequest, t.PingResult, optional_request=True)
    def Ping(ctx, request):
        """连通性检查：服务版本与服务器时间 / Connectivity check: service version and server time."""
        return invoke(ctx, ping, request, t.PingResult)


class PacsService(ServiceBase):
    """Called by PACS/RIS: the worklist, status events, charges and refunds, reports,
    critical values and EMR reading."""

    @operation(t.QueryApplicationsRequest, t.QueryApplicationsResult)
    def QueryApplications(ctx, request):
        """查询检查工作列表（已发布的申请单）/ Query the worklist (released applications)."""
        return invoke(ctx, worklist.query_applications, request, t.QueryApplicationsResult)

    @operation(t.ReportStatusRequest, t.ReportStatusResult)
    def ReportStatus(ctx, request):
        """上报检查进度：预约、登记、检查完成及其撤销 / Report exam progress: scheduled, registered, examined, and their undo."""
        return invoke(ctx, worklist.report_status, request, t.ReportStatusResult)

    @operation(t.ChargeRequest, t.ChargeResult)
    def Charge(ctx, request):
        """PACS 补记费用（住院）/ PACS adds charges (inpatients)."""
        return invoke(ctx, ledger.charge, request, t.ChargeResult)

    @operation(t.RefundRequest, t.RefundResult)
    def Refund(ctx, request):
        """PACS 退费（住院计费行）/ PACS refunds inpatient charge lines."""
        return invoke(ctx, ledger.refund, request, t.RefundResult)

    @operation(t.QueryChargesRequest, t.QueryChargesResult)
    def QueryCharges(ctx, request):
        """查询计费流水，得到要退费的 ChargeId / The ledger, where PACS finds the ChargeIds it refunds (an addition to v1)."""
        return invoke(ctx, ledger.query_charges, request, t.QueryChargesResult)

    @operation(t.PushReportRequest, t.PushReportResult)
    def PushReport(ctx, request):
        """推送检查报告：初步、终审、更正、撤回审核 / Push an exam report: preliminary, final, corrected, withdrawn."""
        return invoke(ctx, reports.push_report, request, t.PushReportResult)

    @operation(t.RaiseCriticalValueRequest, t.RaiseCriticalValueResult)
    def RaiseCriticalValue(ctx, request):
        """上报危急值（双人核对后）/ Raise a critical value (after double check)."""
        return invoke(ctx, critical_values.raise_critical_value, request, t.RaiseCriticalValueResult)

    @operation(t.RevokeCriticalValueRequest, t.RevokeCriticalValueResult)
    def RevokeCriticalValue(ctx, request):
        """撤销误报的危急值（处理前）/ Revoke a critical value raised in error (before it is handled)."""
        return invoke(ctx, critical_values.revoke, request, t.RevokeCriticalValueResult)

    @operation(t.QueryCriticalValuesRequest, t.QueryCriticalValuesResult)
    def QueryCriticalValues(ctx, request):
        """查询危急值及其闭环进度 / Query critical values and their closed-loop progress."""
        return invoke(ctx, critical_values.query_critical_values, request, t.QueryCriticalValuesResult)

    @operation(t.QueryEmrRequest, t.QueryEmrResult)
    def QueryEmr(ctx, request):
        """调阅患者病历文书与医嘱 / Read the patient's EMR documents and orders."""
        return invoke(ctx, emr.query_emr, request, t.QueryEmrResult)

    @operation(t.PingRequest, t.PingResult, optional_request=True)
    def Ping(ctx, request):
        """连通性检查：服务版本与服务器时间 / Connectivity check: service version and server time."""
        return invoke(ctx, ping, request, t.PingResult)
