"""exchange: read-only views and the PACS inbox for partners that only use a database

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:00:00

The views are part of the contract (docs/INTEGRATING.md): their names and columns are
stable; a later release changes them in a new migration, adding columns, never renaming.

Change numbers. Every row a view shows carries ``change_no``: the id (xid8) of the
transaction that last changed it, stamped by a trigger. Transaction ids are handed out when a
transaction starts writing, not when it commits, so a later commit can carry a smaller
number. The views therefore show only rows whose number lies below the oldest transaction
still running (``pg_snapshot_xmin``): every transaction below that has finished, so a row
that appears later always has a number at least as high as any number a reader has already
seen. "Everything since N" (``WHERE change_no > N``) never misses a row.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STAMPED = ("applications", "charge_lines", "refund_lines", "reports", "critical_values")

# The partner's rows: its departments' applications (every one for a HIS), released ones
# only for a PACS (it must not find an unpaid patient). current_user is the partner's login
# role; the view reads exchange_partners with its owner's rights, the partner cannot.
VISIBLE = """EXISTS (SELECT 1 FROM exchange_partners p WHERE p.db_role = current_user
        AND (p.role = 'HIS' OR {app}.released_at IS NOT NULL)
        AND (p.departments IS NULL OR {app}.executing_department_code = ANY (p.departments)))"""
HORIZON = "(SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint)"

HIS_STATUS = """CASE {app}.status
        WHEN 'NEW' THEN CASE WHEN {app}.patient_type = 'INPATIENT' THEN '待发送' ELSE '待收费' END
        WHEN 'RELEASED' THEN '待执行' WHEN 'SCHEDULED' THEN '待执行'
        WHEN 'REGISTERED' THEN '执行中' WHEN 'EXAMINED' THEN '执行中' WHEN 'REPORTED' THEN '执行中'
        WHEN 'VERIFIED' THEN '已完成' WHEN 'CANCELLED' THEN '已撤销' END"""


def visible(app: str = "a") -> str:
    return VISIBLE.format(app=app)


VIEWS = {
    "worklist": ("PACS 检查工作列表：已缴费或已发送、未撤销的检查申请单，每单一行", f"""
    SELECT a.application_no, a.accession_no, a.status, {HIS_STATUS.format(app='a')} AS his_status,
        a.patient_id, a.patient_name, a.patient_snapshot->>'sex' AS sex,
        (a.patient_snapshot->>'birth_date')::date AS birth_date,
        a.patient_snapshot->>'id_card_no' AS id_card_no, a.patient_snapshot->>'phone' AS phone,
        a.visit_snapshot->>'visit_no' AS visit_no, a.patient_type,
        (a.visit_snapshot->>'visit_at')::timestamptz AS visit_at,
        a.visit_snapshot->>'inpatient_no' AS inpatient_no, a.visit_snapshot->>'ward_code' AS ward_code,
        a.visit_snapshot->>'ward_name' AS ward_name, a.visit_snapshot->>'bed_no' AS bed_no,
        a.visit_snapshot->>'department_code' AS visit_department_code,
        a.visit_snapshot->>'department_name' AS visit_department_name,
        a.visit_snapshot->>'diagnosis' AS visit_diagnosis,
        a.ordering_doctor_code, a.ordering_doctor_name, a.ordering_department_code,
        a.ordering_department_name, a.executing_department_code, a.executing_department_name,
        a.ordered_at, a.released_at, a.priority, a.clinical_diagnosis, a.clinical_history,
        a.exam_purpose, a.total_amount, items.item_codes, items.item_names, items.modalities,
        a.updated_at, a.change_no
    FROM applications a
    CROSS JOIN LATERAL (
        SELECT string_agg(i.item_code, ',' ORDER BY i.position) FILTER (WHERE i.parent_pk IS NULL) AS item_codes,
            string_agg(i.item_name, '、' ORDER BY i.position) FILTER (WHERE i.parent_pk IS NULL) AS item_names,
            string_agg(DISTINCT i.modality, ',') AS modalities
        FROM application_items i WHERE i.application_pk = a.id) items
    WHERE a.released_at IS NOT NULL AND a.status <> 'CANCELLED' AND {visible()}
        AND a.change_no < {HORIZON}"""),
    "worklist_items": ("PACS 检查工作列表的项目明细：每个项目一行，组套的组成项目带组套代码", f"""
    SELECT a.application_no, i.position + 1 AS line_no, i.item_code, i.item_name, i.quantity,
        i.unit_price, p.item_code AS package_item_code, i.modality, i.body_part,
        a.executing_department_code, a.updated_at, a.change_no
    FROM application_items i
    JOIN applications a ON a.id = i.application_pk
    LEFT JOIN application_items p ON p.id = i.parent_pk
    WHERE a.released_at IS NOT NULL AND a.status <> 'CANCELLED' AND {visible()}
        AND a.change_no < {HORIZON}"""),
    "application_status": ("检查申请单状态：包括已撤销的申请单（PACS 据此得知撤销）", f"""
    SELECT a.application_no, a.accession_no, a.status, {HIS_STATUS.format(app='a')} AS his_status,
        a.status IN ('REGISTERED','EXAMINED','REPORTED','VERIFIED') AS locked,
        a.patient_id, a.patient_type, a.executing_department_code, a.ordered_at, a.released_at,
        a.paid_amount, a.paid_at, a.invoice_no, a.updated_at, a.change_no
    FROM applications a
    WHERE {visible()} AND a.change_no < {HORIZON}"""),
    "reports": ("检查报告与影像链接：每份报告的最新版本一行（撤回审核的显示为 WITHDRAWN）", f"""
    SELECT a.application_no, r.accession_no, r.report_no, r.version, r.result_status, r.findings,
        r.impression, r.positive, r.reporting_doctor_code, r.reporting_doctor_name, r.reported_at,
        r.verifying_doctor_code, r.verifying_doctor_name, r.verified_at, r.study_instance_uid,
        r.viewer_url,
        (SELECT string_agg(u.url, E'\\n' ORDER BY u.n)
            FROM jsonb_array_elements_text(COALESCE(r.image_urls, '[]'::jsonb)) WITH ORDINALITY AS u(url, n))
            AS image_urls,
        r.pdf_url, a.patient_id, a.executing_department_code, r.recorded_at AS updated_at, r.change_no
    FROM reports r
    JOIN applications a ON a.id = r.application_pk
    WHERE NOT EXISTS (SELECT 1 FROM reports n WHERE n.report_no = r.report_no AND n.version > r.version)
        AND {visible()} AND r.change_no < {HORIZON}"""),
    "critical_values": ("危急值闭环：上报、接收（回读）、处理、撤回，每一步的人和时间", f"""
    SELECT c.critical_value_no, a.application_no, c.report_no, c.patient_id, c.patient_name,
        c.department_code, c.finding, c.status, c.reported_by_code, c.reported_by_name,
        c.reviewed_by_code, c.reviewed_by_name, c.reported_at, c.ack_deadline,
        c.received_by_code, c.received_by_name, c.received_at, c.read_back_confirmed,
        c.handled_by_code, c.handled_by_name, c.handled_at, c.handling_opinion,
        c.revoked_at, c.revoke_reason,
        COALESCE(c.received_at, c.revoked_at, now()) > c.ack_deadline AS overdue,
        a.executing_department_code, c.changed_at AS updated_at, c.change_no
    FROM critical_values c
    JOIN applications a ON a.id = c.application_pk
    WHERE {visible()} AND c.change_no < {HORIZON}"""),
    "charges": ("费用明细（台账）：每条计费一行，已退数量与金额由退费行汇总", f"""
    SELECT l.id::text AS charge_id, a.application_no, l.item_code, l.item_name, l.quantity,
        l.unit_price, l.amount, COALESCE(f.quantity, 0) AS refunded_quantity,
        COALESCE(f.amount, 0) AS refunded_amount, l.trigger, l.charged_at, l.package_item_code,
        a.patient_id, a.visit_snapshot->>'visit_no' AS visit_no, a.executing_department_code,
        GREATEST(l.recorded_at, f.recorded_at) AS updated_at,
        GREATEST(l.change_no, f.change_no) AS change_no
    FROM charge_lines l
    JOIN applications a ON a.id = l.application_pk
    LEFT JOIN (SELECT charge_line_pk, sum(quantity) AS quantity, sum(amount) AS amount,
                      max(recorded_at) AS recorded_at, max(change_no) AS change_no
               FROM refund_lines GROUP BY charge_line_pk) f ON f.charge_line_pk = l.id
    WHERE {visible()} AND GREATEST(l.change_no, f.change_no) < {HORIZON}"""),
    "refunds": ("退费记录：PACS 发起的退费与撤销、取消登记时的自动冲销", f"""
    SELECT f.id AS refund_id, q.refund_request_no, f.charge_line_pk::text AS charge_id,
        a.application_no, f.quantity, f.amount, f.reason, f.operator_code, f.operator_name,
        f.refunded_at, f.source, a.executing_department_code, f.recorded_at AS updated_at, f.change_no
    FROM refund_lines f
    JOIN charge_lines l ON l.id = f.charge_line_pk
    JOIN applications a ON a.id = l.application_pk
    LEFT JOIN refund_requests q ON q.id = f.refund_request_pk
    WHERE {visible()} AND f.change_no < {HORIZON}"""),
}

COLUMN_COMMENTS = {
    "application_no": "申请单号", "accession_no": "检查号（PACS 登记时给出）",
    "status": "申请单状态：RELEASED/SCHEDULED/REGISTERED/EXAMINED/REPORTED/VERIFIED/CANCELLED（HIS 可见 NEW）",
    "his_status": "HIS 显示的状态：待收费/待发送/待执行/执行中/已完成/已撤销",
    "locked": "已登记锁定：为真时 HIS 不能撤销或退费",
    "patient_id": "患者ID（登记号）", "patient_name": "患者姓名", "sex": "性别 M/F/U",
    "birth_date": "出生日期", "id_card_no": "身份证号", "phone": "联系电话", "visit_no": "就诊号",
    "patient_type": "患者类型 OUTPATIENT/EMERGENCY/INPATIENT/PHYSICAL_EXAM", "visit_at": "就诊（入院）时间",
    "inpatient_no": "住院号", "ward_code": "病区代码", "ward_name": "病区名称", "bed_no": "床号",
    "visit_department_code": "就诊科室代码", "visit_department_name": "就诊科室名称",
    "visit_diagnosis": "就诊诊断", "ordering_doctor_code": "开单医生工号",
    "ordering_doctor_name": "开单医生姓名", "ordering_department_code": "开单科室代码",
    "ordering_department_name": "开单科室名称", "executing_department_code": "执行科室代码",
    "executing_department_name": "执行科室名称", "ordered_at": "开单时间",
    "released_at": "进入 PACS 工作列表的时间（缴费或护士发送）", "priority": "优先级 ROUTINE/URGENT",
    "clinical_diagnosis": "临床诊断", "clinical_history": "病史摘要", "exam_purpose": "检查目的",
    "total_amount": "申请单总金额（元）", "item_codes": "项目代码，逗号分隔",
    "item_names": "项目名称，顿号分隔", "modalities": "检查设备类型，逗号分隔",
    "line_no": "项目行号（从 1 起）", "item_code": "项目代码", "item_name": "项目名称",
    "quantity": "数量", "unit_price": "单价（元）", "package_item_code": "所属组套的项目代码",
    "modality": "检查设备类型 CT/MR/DR/US ...", "body_part": "检查部位",
    "paid_amount": "已缴金额（元）", "paid_at": "缴费时间", "invoice_no": "发票号",
    "report_no": "报告号", "version": "报告版本（从 1 起）",
    "result_status": "报告状态 PRELIMINARY/FINAL/CORRECTED/WITHDRAWN", "findings": "检查所见",
    "impression": "诊断意见", "positive": "阳性", "reporting_doctor_code": "报告医生工号",
    "reporting_doctor_name": "报告医生姓名", "reported_at": "报告（上报）时间",
    "verifying_doctor_code": "审核医生工号", "verifying_doctor_name": "审核医生姓名",
    "verified_at": "审核时间", "study_instance_uid": "检查实例 UID（DICOM Study Instance UID）",
    "viewer_url": "影像浏览地址", "image_urls": "图像地址，每行一个", "pdf_url": "报告 PDF 地址",
    "critical_value_no": "危急值编号", "department_code": "患者所在科室（病区，否则就诊科室，否则开单科室）",
    "finding": "危急值内容", "reported_by_code": "上报人工号", "reported_by_name": "上报人姓名",
    "reviewed_by_code": "复核人工号", "reviewed_by_name": "复核人姓名", "ack_deadline": "接收时限",
    "received_by_code": "接收人工号", "received_by_name": "接收人姓名", "received_at": "接收时间",
    "read_back_confirmed": "已回读确认", "handled_by_code": "处理医生工号", "handled_by_name": "处理医生姓名",
    "handled_at": "处理时间", "handling_opinion": "处理意见", "revoked_at": "撤回时间",
    "revoke_reason": "撤回原因", "overdue": "超时：未在时限内接收（仍在等待或接收迟了）",
    "charge_id": "计费行号（退费时引用）", "amount": "金额（元）", "refunded_quantity": "已退数量",
    "refunded_amount": "已退金额（元）", "trigger": "计费时机 PAYMENT/NURSE_SEND/PACS_REGISTER/PACS_CHARGE",
    "charged_at": "计费时间", "refund_id": "退费行号", "refund_request_no": "退费申请号",
    "reason": "原因", "operator_code": "操作员工号", "operator_name": "操作员姓名",
    "refunded_at": "退费时间", "source": "退费来源 PACS/HIS_CANCEL/REGISTRATION_CANCELLED",
    "updated_at": "最后变更时间",
    "change_no": "变更号：单调递增；取上次见到的最大值 N，查询 change_no > N 即得此后的全部变更",
}

INBOX_COLUMNS = """
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_role varchar(63) NOT NULL DEFAULT current_user,
    message_id varchar(64) NOT NULL,
    operation varchar(32) NOT NULL,
    application_no varchar(64),
    status varchar(32),
    occurred_at timestamptz,
    operator_code varchar(64),
    operator_name varchar(100),
    accession_no varchar(64),
    room varchar(64),
    note text,
    report_no varchar(64),
    result_status varchar(16),
    findings text,
    impression text,
    positive boolean,
    reporting_doctor_code varchar(64),
    reporting_doctor_name varchar(100),
    reported_at timestamptz,
    verifying_doctor_code varchar(64),
    verifying_doctor_name varchar(100),
    verified_at timestamptz,
    study_instance_uid varchar(64),
    viewer_url text,
    image_urls text,
    pdf_url text,
    critical_value_no varchar(64),
    finding text,
    reviewed_by_code varchar(64),
    reviewed_by_name varchar(100),
    contact_phone varchar(32),
    reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    state varchar(10) NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'PROCESSED', 'REFUSED')),
    processed_at timestamptz,
    fault_code varchar(64),
    fault_message text,
    replayed boolean,
    status_after varchar(16),
    call_record_id bigint
"""

INBOX_COMMENTS = {
    "id": "收件序号（自动生成）", "partner_role": "写入的数据库角色（自动填写）",
    "message_id": "消息ID：同一合作方唯一，重复写入同一内容不会重复处理（必填）",
    "operation": "操作：ReportStatus/PushReport/RaiseCriticalValue/RevokeCriticalValue（必填）",
    "application_no": "申请单号", "status": "ReportStatus 的状态事件 SCHEDULED/REGISTERED/EXAMINED/SCHEDULE_CANCELLED/REGISTRATION_CANCELLED",
    "occurred_at": "ReportStatus：事件发生时间", "operator_code": "操作员工号（ReportStatus、RevokeCriticalValue）",
    "operator_name": "操作员姓名", "accession_no": "检查号（REGISTERED 必填）", "room": "检查室",
    "note": "备注", "report_no": "报告号（PushReport；RaiseCriticalValue 可选）",
    "result_status": "PushReport 的报告状态 PRELIMINARY/FINAL/CORRECTED/WITHDRAWN", "findings": "检查所见",
    "impression": "诊断意见", "positive": "阳性",
    "reporting_doctor_code": "报告医生工号（PushReport；RaiseCriticalValue 的上报人）",
    "reporting_doctor_name": "报告医生姓名", "reported_at": "报告时间（PushReport、RaiseCriticalValue）",
    "verifying_doctor_code": "审核医生工号（FINAL、CORRECTED 必填）", "verifying_doctor_name": "审核医生姓名",
    "verified_at": "审核时间（FINAL、CORRECTED 必填）", "study_instance_uid": "检查实例 UID",
    "viewer_url": "影像浏览地址", "image_urls": "图像地址，每行一个", "pdf_url": "报告 PDF 地址",
    "critical_value_no": "危急值编号（RaiseCriticalValue、RevokeCriticalValue）", "finding": "危急值内容",
    "reviewed_by_code": "危急值复核人工号", "reviewed_by_name": "危急值复核人姓名",
    "contact_phone": "联系电话", "reason": "撤回原因（RevokeCriticalValue）", "created_at": "写入时间",
    "state": "处理状态 PENDING（待处理）/PROCESSED（已处理）/REFUSED（被拒绝）",
    "processed_at": "处理时间", "fault_code": "拒绝时的错误代码，与 SOAP 接口相同",
    "fault_message": "拒绝时的错误信息，与 SOAP 接口相同", "replayed": "重复的消息：按原结果回答，未再处理",
    "status_after": "处理后的状态：申请单状态；危急值操作为危急值状态", "call_record_id": "消息记录号（his-pacs-ws messages show）",
}


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.execute("CREATE SCHEMA exchange")
    op.execute("COMMENT ON SCHEMA exchange IS 'his-pacs-ws 视图接口：合作方只读视图与 PACS 回写表'")
    op.execute("""
        CREATE FUNCTION his_pacs_change_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.change_no := pg_current_xact_id()::text::bigint;
            RETURN NEW;
        END $$""")
    for table in STAMPED:
        # Rows from before this migration share number 1: a reader starting from 0 sees them.
        op.execute(f"ALTER TABLE {table} ADD COLUMN change_no bigint NOT NULL DEFAULT 1")
        op.execute(f"CREATE TRIGGER {table}_change_stamp BEFORE INSERT OR UPDATE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION his_pacs_change_stamp()")
        op.execute(f"CREATE INDEX ix_{table}_change_no ON {table} (change_no)")
    op.execute("ALTER TABLE critical_values ADD COLUMN changed_at timestamptz NOT NULL DEFAULT now()")
    op.execute("""
        CREATE FUNCTION his_pacs_critical_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.changed_at := now();
            RETURN NEW;
        END $$""")
    op.execute("CREATE TRIGGER critical_values_changed_at BEFORE UPDATE ON critical_values "
               "FOR EACH ROW EXECUTE FUNCTION his_pacs_critical_changed()")

    op.execute("""
        CREATE TABLE exchange_partners (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name varchar(63) NOT NULL UNIQUE,
            db_role varchar(63) NOT NULL UNIQUE,
            role varchar(8) NOT NULL CHECK (role IN ('HIS', 'PACS')),
            departments text[],
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )""")

    for name, (comment, query) in VIEWS.items():
        op.execute(f"CREATE VIEW exchange.{name} WITH (security_barrier) AS {query}")
        op.execute(f"COMMENT ON VIEW exchange.{name} IS {quote(comment)}")
        for column in _columns(name):
            op.execute(f"COMMENT ON COLUMN exchange.{name}.{column} IS {quote(COLUMN_COMMENTS[column])}")

    op.execute(f"CREATE TABLE exchange.pacs_inbox ({INBOX_COLUMNS})")
    op.execute("COMMENT ON TABLE exchange.pacs_inbox IS "
               "'PACS 回写表：一行一个事件，his-pacs-ws 按 SOAP 接口的同一规则处理并填写处理结果'")
    for column, comment in INBOX_COMMENTS.items():
        op.execute(f"COMMENT ON COLUMN exchange.pacs_inbox.{column} IS {quote(comment)}")
    op.execute("CREATE INDEX ix_pacs_inbox_pending ON exchange.pacs_inbox (id) WHERE state = 'PENDING'")
    op.execute("CREATE INDEX ix_pacs_inbox_partner_message ON exchange.pacs_inbox (partner_role, message_id)")
    # A partner sees and writes only its own rows; the owner (his-pacs-ws) is not bound.
    op.execute("ALTER TABLE exchange.pacs_inbox ENABLE ROW LEVEL SECURITY")
    op.execute("CREATE POLICY own_rows ON exchange.pacs_inbox USING (partner_role = current_user) "
               "WITH CHECK (partner_role = current_user AND state = 'PENDING')")
    op.execute("""
        CREATE FUNCTION exchange.pacs_inbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('his_pacs_inbox', '');
            RETURN NULL;
        END $$""")
    op.execute("CREATE TRIGGER pacs_inbox_notify AFTER INSERT ON exchange.pacs_inbox "
               "FOR EACH STATEMENT EXECUTE FUNCTION exchange.pacs_inbox_notify()")
    op.execute("REVOKE ALL ON SCHEMA exchange FROM PUBLIC")


def _columns(view: str) -> list[str]:
    """The view's output columns, from the catalog: each one must have its comment."""
    rows = op.get_bind().exec_driver_sql(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
        (f"exchange.{view}",))
    return [row[0] for row in rows]


def downgrade() -> None:
    op.execute("DROP SCHEMA exchange CASCADE")
    op.execute("DROP TABLE exchange_partners")
    op.execute("DROP TRIGGER critical_values_changed_at ON critical_values")
    op.execute("DROP FUNCTION his_pacs_critical_changed()")
    op.execute("ALTER TABLE critical_values DROP COLUMN changed_at")
    for table in STAMPED:
        op.execute(f"DROP TRIGGER {table}_change_stamp ON {table}")
        op.execute(f"ALTER TABLE {table} DROP COLUMN change_no")
    op.execute("DROP FUNCTION his_pacs_change_stamp()")
