"""Billing arithmetic: charge points, package expansion, refundable remainders. Decimal only."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable, Sequence

from his_pacs_ws.domain.errors import RefundExceedsCharge, SchemaValidationError

FEN = Decimal("0.01")
MILLI = Decimal("0.001")
ZERO = Decimal("0")
# Far above any real exam, well inside the ledger's columns (12 and 11 integer digits).
MAX_AMOUNT = Decimal("9999999999.99")
MAX_QUANTITY = Decimal("99999999.999")


class ChargePoint(str, enum.Enum):
    """When an inpatient's items are charged to the inpatient account."""

    NURSE_SEND = "NURSE_SEND"
    PACS_REGISTER = "PACS_REGISTER"


class Trigger(str, enum.Enum):
    """What created a charge line."""

    PAYMENT = "PAYMENT"
    NURSE_SEND = "NURSE_SEND"
    PACS_REGISTER = "PACS_REGISTER"
    PACS_CHARGE = "PACS_CHARGE"


class RefundSource(str, enum.Enum):
    PACS = "PACS"
    HIS_CANCEL = "HIS_CANCEL"
    REGISTRATION_CANCELLED = "REGISTRATION_CANCELLED"


def money(value: Decimal) -> Decimal:
    """Round to fen, half up, the way cashiers round."""
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def quantity(value: Decimal) -> Decimal:
    """Quantities carry three fraction digits, as stored."""
    return value.quantize(MILLI, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Item:
    """An ordered item; a package (组套) carries its components and is priced by them."""

    item_code: str
    item_name: str
    quantity: Decimal
    unit_price: Decimal
    modality: str | None = None
    body_part: str | None = None
    components: tuple["Item", ...] = ()


@dataclass(frozen=True)
class LineSpec:
    """A charge line to be written: one per plain item, one per package component."""

    item_code: str
    item_name: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    package_item_code: str | None = None


def check_items(items: Sequence[Item]) -> None:
    """Rules the schema cannot say: at least one item, one level of package nesting, and
    amounts a ledger can hold."""
    if not items:
        raise SchemaValidationError("Items must hold at least one ApplicationItem")
    for item in items:
        for component in item.components:
            if component.components:
                raise SchemaValidationError(
                    f"package {item.item_code}: a component cannot hold components itself"
                )
    lines = charge_lines(items)
    for line in lines:
        if line.quantity > MAX_QUANTITY or line.amount > MAX_AMOUNT:
            raise SchemaValidationError(f"item {line.item_code}: quantity or amount out of range")
    if sum((line.amount for line in lines), ZERO) > MAX_AMOUNT:
        raise SchemaValidationError("the items' total is out of range")


def charge_lines(items: Iterable[Item]) -> list[LineSpec]:
    """Expand items into charge lines; a package's components are charged line by line,
    each component's quantity multiplied by the package's."""
    lines: list[LineSpec] = []
    for item in items:
        if item.components:
            for component in item.components:
                count = quantity(component.quantity * item.quantity)
                lines.append(
                    LineSpec(
                        component.item_code,
                        component.item_name,
                        count,
                        money(component.unit_price),
                        money(count * component.unit_price),
                        package_item_code=item.item_code,
                    )
                )
        else:
            count = quantity(item.quantity)
            lines.append(
                LineSpec(
                    item.item_code,
                    item.item_name,
                    count,
                    money(item.unit_price),
                    money(count * item.unit_price),
                )
            )
    return lines


def total(items: Iterable[Item]) -> Decimal:
    return sum((line.amount for line in charge_lines(items)), ZERO)


@dataclass(frozen=True)
class LineBalance:
    """A charge line with what has been refunded of it so far."""

    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    refunded_quantity: Decimal
    refunded_amount: Decimal

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.refunded_quantity

    @property
    def remaining_amount(self) -> Decimal:
        return self.amount - self.refunded_amount


def refund_amount(line: LineBalance, quantity: Decimal, charge_id: str) -> Decimal:
    """The money returned for refunding ``quantity`` of a line.

    Refunds are priced cumulatively: after any sequence of refunds the line has returned
    exactly the value of the quantity refunded so far (rounded once, half up, to the fen),
    and the whole line once all of it is refunded. Rounding each piece on its own would let
    many small refunds run out of money before the quantity runs out.
    """
    if quantity <= ZERO:
        raise SchemaValidationError(f"refund quantity for charge {charge_id} must be positive")
    if quantity > line.remaining_quantity:
        raise RefundExceedsCharge(
            f"charge {charge_id}: refund quantity {quantity} exceeds the remaining "
            f"{line.remaining_quantity}"
        )
    if quantity == line.remaining_quantity:
        return line.remaining_amount
    worth = min(money((line.refunded_quantity + quantity) * line.unit_price), line.amount)
    return min(max(worth - line.refunded_amount, ZERO), line.remaining_amount)
