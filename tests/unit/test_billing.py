"""Billing arithmetic in Decimal: packages, rounding to fen, refundable remainders."""

from decimal import Decimal as D

import pytest

from his_pacs_ws.domain import errors
from his_pacs_ws.domain.billing import Item, LineBalance, charge_lines, check_items, refund_amount, total


def test_a_package_is_priced_by_its_components():
    package = Item("PKG", "CT增强组套", D("1"), D("0"), components=(
        Item("CTZQ", "CT增强", D("1"), D("400.00")), Item("LZZ", "留置针", D("1"), D("35.00"))))
    lines = charge_lines([package])
    assert [(l.item_code, l.amount, l.package_item_code) for l in lines] == [
        ("CTZQ", D("400.00"), "PKG"), ("LZZ", D("35.00"), "PKG")]
    assert total([package]) == D("435.00")


def test_component_quantities_multiply_by_the_package_quantity():
    package = Item("PKG", "组套", D("2"), D("0"), components=(Item("FILM", "胶片", D("1.5"), D("10.00")),))
    [line] = charge_lines([package])
    assert (line.quantity, line.amount) == (D("3.000"), D("30.00"))


def test_amounts_round_half_up_to_fen():
    [line] = charge_lines([Item("X", "x", D("0.333"), D("10.00"))])
    assert line.amount == D("3.33")
    [line] = charge_lines([Item("X", "x", D("0.125"), D("1.00"))])
    assert line.amount == D("0.13")


def test_items_are_required_and_nesting_is_one_level():
    with pytest.raises(errors.SchemaValidationError):
        check_items([])
    inner = Item("A", "a", D("1"), D("1"), components=(Item("B", "b", D("1"), D("1")),))
    with pytest.raises(errors.SchemaValidationError):
        check_items([Item("P", "p", D("1"), D("0"), components=(inner,))])


def balance(quantity="3", price="0.33", amount="0.99", refunded_q="0", refunded_a="0"):
    return LineBalance(D(quantity), D(price), D(amount), D(refunded_q), D(refunded_a))


def test_refunding_the_remainder_returns_exactly_what_is_left():
    assert refund_amount(balance(refunded_q="2", refunded_a="0.66"), D("1"), "1") == D("0.33")
    assert refund_amount(balance(quantity="3", price="0.335", amount="1.01",
                                 refunded_q="2", refunded_a="0.68"), D("1"), "1") == D("0.33")


def refund_in_pieces(line: LineBalance, pieces: list[D]) -> LineBalance:
    for piece in pieces:
        amount = refund_amount(line, piece, "1")
        line = LineBalance(line.quantity, line.unit_price, line.amount,
                           line.refunded_quantity + piece, line.refunded_amount + amount)
    return line


def test_small_refunds_sum_to_the_value_of_the_quantity_refunded():
    line = balance(quantity="1", price="33.33", amount="33.33")
    after = refund_in_pieces(line, [D("0.005")] * 20)
    assert after.refunded_quantity == D("0.100")
    assert after.refunded_amount == D("3.33")  # 0.1 unit of 33.33, not 20 x 0.17
    rest = refund_in_pieces(after, [D("0.005")] * 180)
    assert (rest.remaining_quantity, rest.remaining_amount) == (D("0"), D("0"))


@pytest.mark.parametrize("price,pieces", [
    ("33.33", ["0.005"] * 7 + ["0.333", "0.001"]),
    ("0.01", ["0.001"] * 9),
    ("19.99", ["0.125", "0.125", "0.250", "0.003"]),
])
def test_every_prefix_of_refunds_is_worth_its_quantity(price, pieces):
    line = balance(quantity="1", price=price, amount=price)
    for count in range(1, len(pieces) + 1):
        after = refund_in_pieces(line, [D(p) for p in pieces[:count]])
        assert after.refunded_amount == (after.refunded_quantity * D(price)).quantize(D("0.01"), "ROUND_HALF_UP")


def test_refund_cannot_exceed_the_remainder():
    with pytest.raises(errors.RefundExceedsCharge):
        refund_amount(balance(refunded_q="2.5", refunded_a="0.83"), D("0.6"), "1")


def test_refund_quantity_must_be_positive():
    with pytest.raises(errors.SchemaValidationError):
        refund_amount(balance(), D("0"), "1")


def test_amounts_beyond_the_ledger_are_refused():
    huge = Item("X", "x", D("99999999999.999"), D("999999999999.99"))
    with pytest.raises(errors.SchemaValidationError):
        check_items([huge])
    package = Item("P", "p", D("99999999"), D("0"), components=(Item("C", "c", D("99999999"), D("0.01")),))
    with pytest.raises(errors.SchemaValidationError):
        check_items([package])
    many = [Item(f"X{i}", "x", D("1"), D("999999999999.99")) for i in range(20)]
    with pytest.raises(errors.SchemaValidationError):
        check_items(many)
