"""A stateful property test: hypothesis drives HisService and PacsService over HTTP with
random sequences of calls (and retries of earlier ones) and checks, after every step,
that the service agrees with a model of the rules: status, timeline, ledger, and what
PACS may see. Bounded: a few dozen short runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule
from hypothesis.stateful import run_state_machine_as_test
from lxml import etree

from tests.soap.conftest import HIS_PASSWORD, HIS_USER, PACS_PASSWORD, PACS_USER, TNS, security_header

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
RANK = {"NEW": 0, "RELEASED": 1, "SCHEDULED": 2, "REGISTERED": 3, "EXAMINED": 4}
PRICE = Decimal("33.33")
FEN = Decimal("0.01")
STAFF = "<v:Code>S1</v:Code><v:Name>王</v:Name>"


def q(tag: str) -> str:
    return f"{{{TNS}}}{tag}"


@dataclass
class Line:
    trigger: str
    refunded_q: Decimal = Decimal("0")
    refunded_a: Decimal = Decimal("0")

    @property
    def remaining(self) -> Decimal:
        return Decimal("1") - self.refunded_q


@dataclass
class Model:
    no: str
    inpatient: bool
    department: str  # CT charges at the nurse's send, MR at registration (the test server's setting)
    status: str = "NEW"
    released: bool = False
    timeline: list[tuple[str, bool]] = field(default_factory=lambda: [("SUBMITTED", True)])
    lines: list[Line] = field(default_factory=list)

    def reverse(self, trigger: str | None = None) -> None:
        for line in self.lines:
            if trigger in (None, line.trigger):
                line.refunded_q, line.refunded_a = Decimal("1"), PRICE


class Api:
    """Hand-written envelopes over one HTTP session; answers as (fault code or None, root)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.clock = datetime(2026, 11, 26, 9, 0, tzinfo=timezone(timedelta(hours=8)))

    def now(self) -> str:  # every event later than the last: no reordering here
        self.clock += timedelta(minutes=1)
        return self.clock.isoformat()

    def post(self, service: str, operation: str, fields: str) -> tuple[bytes, bytes]:
        user, password = (HIS_USER, HIS_PASSWORD) if service == "his" else (PACS_USER, PACS_PASSWORD)
        body = (f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:v="{TNS}">{security_header(user, password)}'
                f"<soapenv:Body><v:{operation}><v:request>{fields}</v:request></v:{operation}>"
                "</soapenv:Body></soapenv:Envelope>").encode()
        return body, self.send(service, body)

    def send(self, service: str, body: bytes) -> bytes:
        answer = self.session.post(f"{self.base_url}/ws/{service}", data=body, timeout=30,
                                   headers={"Content-Type": "text/xml; charset=utf-8"})
        assert answer.status_code in (200, 500), answer.status_code
        return answer.content


def fault_of(content: bytes) -> str | None:
    code = etree.fromstring(content).find(f".//{q('ServiceFault')}/{q('Code')}")
    return code.text if code is not None else None


def mid() -> str:
    return f"M{uuid.uuid4().hex[:14]}"


class Hospital(RuleBasedStateMachine):
    api: Api  # set by the test

    applications = Bundle("applications")

    def __init__(self):
        super().__init__()
        self.models: dict[str, Model] = {}
        self.sent: list[tuple[str, bytes, bytes]] = []  # (service, request, answer) of calls with a MessageId

    def call(self, service: str, operation: str, fields: str, *, retryable: bool = True) -> str | None:
        body, answer = self.api.post(service, operation, fields)
        if retryable:
            self.sent.append((service, body, answer))
        return fault_of(answer)

    @precondition(lambda self: len(self.models) < 4)  # a few applications, many steps each
    @rule(target=applications, inpatient=st.booleans(), department=st.sampled_from(["CT", "MR"]))
    def submit(self, inpatient, department):
        no = f"A{uuid.uuid4().hex[:12]}"
        kind = "INPATIENT" if inpatient else "OUTPATIENT"
        fault = self.call("his", "SubmitApplication", f"""<v:MessageId>{mid()}</v:MessageId>
<v:ApplicationNo>{no}</v:ApplicationNo><v:Patient><v:PatientId>P{no}</v:PatientId><v:Name>小明</v:Name>
<v:Sex>M</v:Sex></v:Patient><v:Visit><v:VisitNo>V{no}</v:VisitNo><v:PatientType>{kind}</v:PatientType></v:Visit>
<v:OrderingDoctor>{STAFF}</v:OrderingDoctor><v:OrderingDepartmentCode>NK</v:OrderingDepartmentCode>
<v:ExecutingDepartmentCode>{department}</v:ExecutingDepartmentCode><v:OrderedAt>{self.api.now()}</v:OrderedAt>
<v:Items><v:ApplicationItem><v:ItemCode>X1</v:ItemCode><v:ItemName>检查</v:ItemName><v:Quantity>1</v:Quantity>
<v:UnitPrice>{PRICE}</v:UnitPrice></v:ApplicationItem></v:Items>""")
        assert fault is None
        self.models[no] = Model(no, inpatient, department)
        return no

    @rule(no=applications)
    def release(self, no):
        """The cashier's payment for an outpatient, the nurse's send for an inpatient."""
        m = self.models[no]
        if m.inpatient:
            fault = self.call("his", "SendInpatientOrder", f"<v:MessageId>{mid()}</v:MessageId><v:ApplicationNo>{no}"
                              f"</v:ApplicationNo><v:Nurse>{STAFF}</v:Nurse><v:SentAt>{self.api.now()}</v:SentAt>")
        else:
            fault = self.call("his", "ConfirmPayment", f"<v:MessageId>{mid()}</v:MessageId><v:ApplicationNo>{no}"
                              f"</v:ApplicationNo><v:Amount>{PRICE}</v:Amount><v:PaidAt>{self.api.now()}</v:PaidAt>")
        if m.status != "NEW":
            assert fault == "InvalidTransition", (m.status, fault)
            return
        assert fault is None
        m.status, m.released = "RELEASED", True
        m.timeline.append(("ORDER_SENT" if m.inpatient else "PAID", True))
        if not m.inpatient or m.department == "CT":
            m.lines.append(Line("NURSE_SEND" if m.inpatient else "PAYMENT"))

    @rule(no=applications)
    def pay_for_an_inpatient(self, no):
        m = self.models[no]
        if not m.inpatient or m.status != "NEW":
            return
        fault = self.call("his", "ConfirmPayment", f"<v:MessageId>{mid()}</v:MessageId><v:ApplicationNo>{no}"
                          f"</v:ApplicationNo><v:Amount>{PRICE}</v:Amount><v:PaidAt>{self.api.now()}</v:PaidAt>")
        assert fault == "NotOutpatient"

    @rule(no=applications)
    def cancel(self, no):
        m = self.models[no]
        fault = self.call("his", "CancelApplication", f"<v:MessageId>{mid()}</v:MessageId><v:ApplicationNo>{no}"
                          f"</v:ApplicationNo><v:Reason>改约</v:Reason><v:Operator>{STAFF}</v:Operator>"
                          f"<v:CancelledAt>{self.api.now()}</v:CancelledAt>")
        if m.status in RANK and RANK[m.status] >= RANK["REGISTERED"]:
            assert fault == "ApplicationLocked"
            return
        assert fault is None
        if m.status != "CANCELLED":
            m.status = "CANCELLED"
            m.timeline.append(("CANCELLED", True))
            m.reverse()

    @rule(no=applications, event=st.sampled_from(
        ["SCHEDULED", "REGISTERED", "EXAMINED", "SCHEDULE_CANCELLED", "REGISTRATION_CANCELLED"]))
    def report_status(self, no, event):
        m = self.models[no]
        accession = f"<v:AccessionNo>ACC{no}</v:AccessionNo>" if event == "REGISTERED" else ""
        fault = self.call("pacs", "ReportStatus", f"<v:MessageId>{mid()}</v:MessageId><v:ApplicationNo>{no}"
                          f"</v:ApplicationNo><v:Status>{event}</v:Status><v:OccurredAt>{self.api.now()}"
                          f"</v:OccurredAt><v:Operator>{STAFF}</v:Operator>{accession}")
        if not m.released:
            assert fault == "ApplicationNotFound"
            return
        if m.status == "CANCELLED":
            assert fault == "InvalidTransition"
            return
        undo = {"SCHEDULE_CANCELLED": "SCHEDULED", "REGISTRATION_CANCELLED": "REGISTERED"}
        if event in undo:
            undoes = undo[event]
            if RANK[m.status] < RANK[undoes]:
                m.timeline.append((event, False))
            elif m.status == undoes:
                m.timeline.append((event, True))
                m.status = "RELEASED"
                if event == "REGISTRATION_CANCELLED" and m.department == "MR" and m.inpatient:
                    m.reverse("PACS_REGISTER")
            else:
                assert fault == "InvalidTransition", (m.status, event, fault)
                return
            assert fault is None
            return
        assert fault is None, (m.status, event, fault)
        if RANK[event] <= RANK[m.status]:
            m.timeline.append((event, False))
            return
        if m.inpatient and m.department == "MR" and RANK[m.status] < RANK["REGISTERED"] <= RANK[event]:
            m.lines.append(Line("PACS_REGISTER"))  # registration, or the exam that implies it
        m.status = event
        m.timeline.append((event, True))

    @rule(no=applications, piece=st.sampled_from(["0.005", "0.125", "0.5", "all", "too much"]))
    def refund(self, no, piece):
        m = self.models[no]
        open_lines = [i for i, line in enumerate(m.lines) if line.remaining > 0]
        if not m.released or m.status == "CANCELLED" or (m.inpatient and not open_lines):
            return
        charges = self.charges(no)
        index = open_lines[0] if open_lines else 0
        line = m.lines[index] if m.lines else None
        quantity = {"all": line.remaining if line else Decimal("1"),
                    "too much": (line.remaining if line else Decimal("1")) + Decimal("0.001")}.get(piece, piece)
        quantity = Decimal(quantity)
        charge_id = charges[index]["ChargeId"] if charges else "1"
        fault = self.call("pacs", "Refund", f"<v:MessageId>{mid()}</v:MessageId><v:RefundRequestNo>R{mid()}"
                          f"</v:RefundRequestNo><v:ApplicationNo>{no}</v:ApplicationNo><v:Lines><v:RefundLine>"
                          f"<v:ChargeId>{charge_id}</v:ChargeId><v:Quantity>{quantity}</v:Quantity></v:RefundLine>"
                          f"</v:Lines><v:Reason>设备故障</v:Reason><v:Operator>{STAFF}</v:Operator>"
                          f"<v:RequestedAt>{self.api.now()}</v:RequestedAt>")
        if not m.inpatient:
            assert fault == "RefundNotAllowed"
            return
        if quantity > line.remaining:
            assert fault == "RefundExceedsCharge"
            return
        assert fault is None, fault
        line.refunded_q += quantity
        worth = PRICE if line.refunded_q == 1 else (line.refunded_q * PRICE).quantize(FEN, ROUND_HALF_UP)
        line.refunded_a = worth

    @precondition(lambda self: self.sent)
    @rule(pick=st.integers(min_value=0))
    def retry(self, pick):
        """A repeated call (same MessageId, same body) is answered byte for byte as before
        and changes nothing (the invariants check that)."""
        service, body, answer = self.sent[pick % len(self.sent)]
        assert self.api.send(service, body) == answer

    def charges(self, no: str) -> list[dict]:
        _, content = self.api.post("his", "GetApplication", f"<v:ApplicationNo>{no}</v:ApplicationNo>")
        root = etree.fromstring(content)
        lines = [{child.tag.split("}")[1]: child.text for child in node} for node in root.iter(q("ChargeLine"))]
        return sorted(lines, key=lambda line: int(line["ChargeId"]))

    @invariant()
    def the_service_agrees_with_the_model(self):
        for no, m in self.models.items():
            _, content = self.api.post("his", "GetApplication", f"<v:ApplicationNo>{no}</v:ApplicationNo>")
            root = etree.fromstring(content)
            application = root.find(f".//{q('Application')}")
            assert application.findtext(q("Status")) == m.status, no
            timeline = [(e.findtext(q("Event")), e.findtext(q("Applied")) == "true")
                        for e in root.iter(q("StatusEvent"))]
            assert timeline == m.timeline, no
            charges = [{child.tag.split("}")[1]: child.text for child in node} for node in root.iter(q("ChargeLine"))]
            charges.sort(key=lambda line: int(line["ChargeId"]))
            assert [(c["Trigger"], Decimal(c["Amount"]), Decimal(c["RefundedQuantity"]), Decimal(c["RefundedAmount"]))
                    for c in charges] == [(line.trigger, PRICE, line.refunded_q, line.refunded_a) for line in m.lines]
            _, visible = self.api.post("pacs", "QueryApplications", f"<v:ApplicationNo>{no}</v:ApplicationNo>"
                                       "<v:Statuses>" + "".join(f"<v:Status>{s}</v:Status>" for s in
                                                                 [*RANK, "REPORTED", "VERIFIED", "CANCELLED"])
                                       + "</v:Statuses>")
            found = [a.findtext(q("ApplicationNo")) for a in etree.fromstring(visible).iter(q("ApplicationDetail"))]
            assert found == ([no] if m.released else []), (no, m.status)


def test_the_service_follows_the_rules_under_random_call_sequences(base_url):
    Hospital.api = Api(base_url)
    run_state_machine_as_test(Hospital, settings=settings(
        max_examples=15, stateful_step_count=15, deadline=None, database=None,
        suppress_health_check=list(HealthCheck)))
