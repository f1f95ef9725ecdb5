"""The ``xs:documentation`` of the contract's named types, in Chinese and English.

Wrapper elements, ``<Op>Request``/``<Op>Result`` and ``<T>Array`` types are described by
rule (soap/wsdl.py); every other named type needs an entry here (a test checks).
"""

from __future__ import annotations

TYPE_DOCS = {
    # simple types
    "Code": "编码（1-64 字符），如登记号、申请单号、科室编码 / A code or number (1-64 characters): ids, numbers, department codes",
    "Name": "名称（1-100 字符）/ A name (1-100 characters)",
    "ShortText": "短文本（至多 200 字符）/ Short text (up to 200 characters)",
    "Text": "文本（至多 20000 字符）/ Text (up to 20000 characters)",
    "MessageId": "消息号（1-64 字符），每个调用方唯一；重发同一消息返回原结果 / Message id (1-64 characters), unique per caller; a repeat returns the original answer",
    "Money": "金额，元，至多 2 位小数（分）/ Money in yuan, at most 2 fraction digits (fen)",
    "Quantity": "数量，大于 0，至多 3 位小数 / Quantity, greater than 0, at most 3 fraction digits",
    "RefundedQuantity": "已退数量，至多 3 位小数 / Quantity refunded so far, at most 3 fraction digits",
    "PageSize": "每页条数（1-500，默认 100）/ Page size (1-500, default 100)",
    "MaxDocuments": "最多返回的文书数（1-1000）/ Most documents to return (1-1000)",
    "Count": "计数 / A count",
    "Version": "版本号，从 1 起 / Version number, from 1",
    "Minutes": "分钟数，1 位小数 / Minutes, one fraction digit",
    "Url": "网址 / A URL",
    "ImageUrl": "图像网址 / An image URL",
    "DocumentType": "病历文书类型，如 入院记录 / EMR document type, e.g. admission note",
    "DocumentContent": "病历文书正文 / EMR document text",
    "Phone": "电话号码 / Phone number",
    "ShortCode": "短编码（1-32 字符），如床号、身份证号 / Short code (1-32 characters): bed number, ID card number",
    "Modality": "检查设备类型，如 CT、MR、DR、US / Modality, e.g. CT, MR, DR, US",
    "Sex": "性别：M 男，F 女，U 未知 / Sex: M male, F female, U unknown",
    "PatientType": "患者类型：门诊、急诊、住院、体检 / Patient type: outpatient, emergency, inpatient, physical exam",
    "Priority": "优先级：ROUTINE 普通，URGENT 加急；不传即普通 / Priority: ROUTINE or URGENT; absent means ROUTINE",
    "ApplicationStatus": "申请单状态（见 HisStatus 的中文含义）/ Application status (HisStatus gives its Chinese meaning)",
    "EventSource": "事件来源：HIS、PACS、SYSTEM / Where an event came from: HIS, PACS, SYSTEM",
    "PacsStatusEvent": "PACS 上报的检查进度事件 / An exam progress event reported by PACS",
    "ChargeTrigger": "计费时机：缴费、护士发送、PACS 登记、PACS 补费 / What posted a charge: payment, nurse send, PACS registration, PACS charge",
    "RefundSource": "退费来源：PACS、HIS 撤销、取消登记 / What caused a refund: PACS, HIS cancellation, cancelled registration",
    "ResultStatus": "报告状态：初步、终审、更正、撤回审核 / Report status: preliminary, final, corrected, withdrawn",
    "CriticalValueStatus": "危急值状态：已上报、已接收、已处理、已撤销 / Critical value status: raised, received, handled, revoked",
    "EmrScope": "病历范围：本次就诊或全部就诊 / EMR scope: the current visit or all visits",
    "Sequence": "通知序号，同一申请单内递增 / Notification sequence number, increasing per application",
    # complex types
    "Staff": "医护或操作人员：工号与姓名 / A member of staff: code and name",
    "Patient": "患者基本信息 / The patient",
    "Visit": "就诊信息（门诊号或住院号、科室、床位、诊断）/ The visit (visit number, ward, bed, department, diagnosis)",
    "ApplicationItem": "检查项目：编码、名称、数量、单价；组套的各行在 Components 中 / An exam item: code, name, quantity, unit price; a package lists its lines in Components",
    "ApplicationState": "申请单当前状态 / The current state of an application",
    "ApplicationDetail": "申请单全部内容及当前状态 / An application in full, with its current state",
    "StatusEvent": "申请单时间线上的一个事件 / One event on an application's timeline",
    "ChargeLine": "一条计费流水（只增不改）/ A charge ledger line (never updated in place)",
    "RefundLine": "要退费的计费行与数量 / A charge line and quantity to refund",
    "RefundRecord": "一条退费流水 / A refund ledger line",
    "Report": "检查报告的一个版本 / One version of an exam report",
    "CriticalValue": "危急值及其闭环各环节 / A critical value and each step of its closed loop",
    "EmrDocument": "一份病历文书；Version 不传即 1 / An EMR document; Version absent means 1",
    "EmrOrder": "一条医嘱 / A medical order",
    "EmrVisit": "一次就诊及其病历文书与医嘱 / A visit with its EMR documents and orders",
    "ServiceFault": "所有 SOAP 错误的详情：稳定的错误码、说明、可否重试 / The detail of every SOAP fault: a stable code, a message, whether to retry",
}

# Optional value-typed request fields whose absence means a value: the WSDL declares it as
# the element's default. .NET proxies then carry the field without a forgettable
# ``*Specified`` flag (wsdl.exe writes [DefaultValue] and sends any other value).
ELEMENT_DEFAULTS = {
    ("SubmitApplicationRequest", "Priority"): "ROUTINE",
    ("QueryReportsRequest", "IncludePrior"): "true",
    ("QueryReportsRequest", "IncludePreliminary"): "false",
    ("QueryCriticalValuesRequest", "OverdueOnly"): "false",
    ("QueryApplicationsRequest", "PageSize"): "100",
    ("QueryEmrRequest", "Scope"): "CURRENT_VISIT",
    ("QueryEmrRequest", "IncludeOrders"): "false",
    ("QueryEmrRequest", "MaxDocuments"): "200",
    ("EmrDocument", "Version"): "1",
}
