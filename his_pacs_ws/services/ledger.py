"""The charge/refund ledger: charge points, PACS charges and refunds, and the ledger query.

Lines are only ever added. What is left of a line is derived from its refund lines.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.db.models import RefundLine
from his_pacs_ws.db.repositories import AnyApplication, LedgerScope, LineWithRefunds
from his_pacs_ws.domain import billing
from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.domain.billing import ChargePoint, LineBalance, RefundSource, Trigger
from his_pacs_ws.domain.errors import (
    ChargeNotAllowed,
    ChargeNotFound,
    ChargeRequestExists,
    RefundNotAllowed,
    RefundRequestExists,
    SchemaValidationError,
)
from his_pacs_ws.domain.status import RANK, PatientType, Status
from his_pacs_ws.domain.timeline import Event
from his_pacs_ws.services.common import (
    charge_line,
    fingerprint,
    item_tree,
    load_for_pacs,
    refund_record,
    to_item,
    without,
)
from his_pacs_ws.services import outbox
from his_pacs_ws.services.messages import run_once


def post_lines(uow: UnitOfWork, app: AnyApplication, lines: list[billing.LineSpec], trigger: Trigger,
               charged_at: datetime, *, origin: str | None, operator: dict | None = None,
               charge_request_pk: int | None = None) -> list[LineWithRefunds]:
    created = uow.ledger.add_lines(app.id, [
        {"charge_request_pk": charge_request_pk, "item_code": spec.item_code, "item_name": spec.item_name,
         "quantity": spec.quantity, "unit_price": spec.unit_price, "amount": spec.amount,
         "trigger": trigger.value, "package_item_code": spec.package_item_code,
         "operator_code": (operator or {}).get("code"), "operator_name": (operator or {}).get("name"),
         "charged_at": charged_at}
        for spec in lines
    ])
    posted = [LineWithRefunds(line, app.application_no, Decimal("0.000"), Decimal("0.00")) for line in created]
    outbox.charges_posted(uow, app, lines=posted, refunds=[], occurred_at=charged_at, origin=origin)
    return posted


def post_items(uow: UnitOfWork, app: AnyApplication, trigger: Trigger, charged_at: datetime, *,
               origin: str | None, operator: dict | None = None) -> list[LineWithRefunds]:
    """Charge the application's own items (and package components, line by line)."""
    items = [to_item(i) for i in item_tree(uow.applications.items([app.id])[app.id])]
    return post_lines(uow, app, billing.charge_lines(items), trigger, charged_at, operator=operator,
                      origin=origin)


def reverse_all(uow: UnitOfWork, app: AnyApplication, source: RefundSource, at: datetime, *,
                reason: str, operator: dict | None, origin: str | None,
                triggers: set[Trigger] | None = None) -> list[LineWithRefunds]:
    """Refund whatever remains of the application's lines (optionally only some triggers)."""
    reversed_lines: list = []
    refunds: list[tuple[RefundLine, str | None]] = []
    for entry in uow.ledger.lines(app.id):
        if triggers is not None and Trigger(entry.line.trigger) not in triggers:
            continue
        balance = _balance(entry)
        if balance.remaining_quantity <= 0:
            continue
        refunds.append((uow.ledger.add_refund(
            charge_line_pk=entry.line.id, quantity=balance.remaining_quantity,
            amount=balance.remaining_amount, reason=reason, source=source.value, refunded_at=at,
            operator_code=(operator or {}).get("code"), operator_name=(operator or {}).get("name"),
        ), None))
        reversed_lines.append(
            LineWithRefunds(entry.line, entry.application_no, entry.line.quantity, entry.line.amount)
        )
    uow.ledger.flush()
    outbox.charges_posted(uow, app, lines=reversed_lines, refunds=refunds, occurred_at=at, origin=origin)
    return reversed_lines


def _balance(entry: LineWithRefunds) -> LineBalance:
    return LineBalance(entry.line.quantity, entry.line.unit_price, entry.line.amount,
                       entry.refunded_quantity, entry.refunded_amount)


def charge(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """PACS adds charges to an inpatient's account (e.g. contrast agent, extra films)."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        app = load_for_pacs(uow, req["application_no"], caller)
        if PatientType(app.patient_type) is not PatientType.INPATIENT:
            raise ChargeNotAllowed(
                f"application {app.application_no} is paid at the cashier; PACS cannot charge it"
            )
        if app.status == Status.CANCELLED.value:
            raise ChargeNotAllowed(f"application {app.application_no} is cancelled")
        items = [to_item(i) for i in req.get("items") or []]
        billing.check_items(items)
        content = fingerprint(without(req, "message_id"))
        pk = uow.ledger.claim_charge_request(
            {"charge_request_no": req["charge_request_no"], "application_pk": app.id,
             "request_hash": content}
        )
        if pk is None:
            existing = uow.ledger.charge_request(req["charge_request_no"])
            assert existing is not None  # the row that won the insert
            if existing.request_hash != content:
                raise ChargeRequestExists(
                    f"ChargeRequestNo {req['charge_request_no']} exists with different content"
                )
            return {"charges": [charge_line(c) for c in uow.ledger.lines(app.id, charge_request_pk=existing.id)]}
        posted = post_lines(uow, app, billing.charge_lines(items), Trigger.PACS_CHARGE,
                            req["charged_at"], operator=req["operator"], charge_request_pk=pk,
                            origin=caller.name)
        return {"charges": [charge_line(c) for c in posted]}

    return run_once(uow, caller, "Charge", request, rule)


def refund(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """PACS refunds inpatient charge lines, whatever the status (the seed's 小李 case)."""

    def rule(uow: UnitOfWork, req: dict) -> dict:
        app = load_for_pacs(uow, req["application_no"], caller)
        if PatientType(app.patient_type) is not PatientType.INPATIENT:
            raise RefundNotAllowed(
                f"application {app.application_no} was paid at the cashier; the cashier refunds it"
            )
        content = fingerprint(without(req, "message_id"))
        pk = uow.ledger.claim_refund_request(
            {"refund_request_no": req["refund_request_no"], "application_pk": app.id,
             "request_hash": content}
        )
        if pk is None:
            existing = uow.ledger.refund_request(req["refund_request_no"])
            assert existing is not None  # the row that won the insert
            if existing.request_hash != content:
                raise RefundRequestExists(
                    f"RefundRequestNo {req['refund_request_no']} exists with different content"
                )
            refunds = uow.ledger.refunds_of_request(existing.id)
            after = uow.ledger.lines(app.id, ids={r.charge_line_pk for r in refunds})
        else:
            refunds = _refund_lines(uow, app, req, pk)
            after = uow.ledger.lines(app.id, ids={r.charge_line_pk for r in refunds})
            outbox.charges_posted(uow, app, lines=after, refunds=[(r, req["refund_request_no"]) for r in refunds],
                                  occurred_at=req["requested_at"], origin=caller.name)
        return {
            "refunds": [refund_record(r, req["refund_request_no"]) for r in refunds],
            "charges": [charge_line(c) for c in after],
        }

    return run_once(uow, caller, "Refund", request, rule)


def _refund_lines(uow: UnitOfWork, app: AnyApplication, req: dict, refund_request_pk: int) -> list:
    if not req.get("lines"):
        raise SchemaValidationError("Lines must hold at least one RefundLine")
    wanted: dict[int, Decimal] = {}
    for line in req["lines"]:
        charge_id = _charge_pk(line["charge_id"])
        wanted[charge_id] = wanted.get(charge_id, Decimal(0)) + billing.quantity(Decimal(line["quantity"]))
    entries = {e.line.id: e for e in uow.ledger.lines(app.id, ids=wanted)}
    refunds = []
    for charge_pk, quantity in wanted.items():
        entry = entries.get(charge_pk)
        if entry is None:
            raise ChargeNotFound(f"charge {charge_pk} is not on application {app.application_no}")
        amount = billing.refund_amount(_balance(entry), quantity, str(charge_pk))
        refunds.append(uow.ledger.add_refund(
            charge_line_pk=charge_pk, refund_request_pk=refund_request_pk, quantity=quantity,
            amount=amount, reason=req["reason"], source=RefundSource.PACS.value,
            refunded_at=req["requested_at"], operator_code=req["operator"]["code"],
            operator_name=req["operator"]["name"],
        ))
    uow.ledger.flush()
    return refunds


def _charge_pk(charge_id: str) -> int:
    """ChargeIds are the ledger's line numbers; anything else names no charge."""
    if not (charge_id.isascii() and charge_id.isdigit() and len(charge_id) <= 18):
        raise ChargeNotFound(f"charge {charge_id} does not exist")
    return int(charge_id)


def query_charges(uow: UnitOfWork, settings: Settings, caller: Caller, request: dict) -> dict:
    """The ledger of an application, or of a patient (and visit). On PacsService, where
    PACS finds the ChargeIds it refunds, only released applications of its departments."""
    if not request.get("application_no") and not request.get("patient_id"):
        raise SchemaValidationError("QueryCharges needs ApplicationNo or PatientId")
    scope = LedgerScope(
        application_no=request.get("application_no"),
        patient_id=request.get("patient_id"),
        visit_no=request.get("visit_no"),
        released_only=caller.role is Role.PACS,
        departments=caller.department_list,
    )
    with uow.reading():
        lines = uow.ledger.lines_for(scope, charged_from=request.get("from"), charged_to=request.get("to"))
        refunds = uow.ledger.refunds_for(scope, refunded_from=request.get("from"), refunded_to=request.get("to"))
        return {
            "charges": [charge_line(c) for c in lines],
            "refunds": [refund_record(r, no) for r, no in refunds],
            "total_charged": sum((c.line.amount for c in lines), Decimal("0.00")),
            "total_refunded": sum((r.amount for r, _ in refunds), Decimal("0.00")),
        }


def charge_point_effects(uow: UnitOfWork, app: AnyApplication, previous: Status, target: Status,
                         event: Event, at: datetime, operator: dict | None, *, origin: str | None,
                         note: str | None = None) -> list[LineWithRefunds]:
    """Under PACS_REGISTER, reaching registration charges the items (EXAMINED, or a report,
    straight from RELEASED implies registration) and REGISTRATION_CANCELLED reverses them."""
    if app.charge_point != ChargePoint.PACS_REGISTER.value:
        return []
    if event is Event.REGISTRATION_CANCELLED:
        return reverse_all(uow, app, RefundSource.REGISTRATION_CANCELLED, at,
                           reason=note or "registration cancelled", operator=operator,
                           triggers={Trigger.PACS_REGISTER}, origin=origin)
    if RANK[previous] < RANK[Status.REGISTERED] <= RANK[target]:
        return post_items(uow, app, Trigger.PACS_REGISTER, at, operator=operator, origin=origin)
    return []
