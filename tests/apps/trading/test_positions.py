from decimal import Decimal as D

from apps.trading.positions import PositionState


def test_it_averages_the_entry_price_when_adding_to_a_long():
    p = PositionState()
    p.apply_fill(side="BUY", quantity=D("1"), price=D("100"), fee=D("0.1"))
    p.apply_fill(side="BUY", quantity=D("1"), price=D("110"), fee=D("0.11"))
    assert (p.quantity, p.average_price) == (D("2"), D("105"))
    assert p.realized_pnl == D("-0.21")


def test_it_realizes_pnl_after_fees_when_closing():
    p = PositionState()
    p.apply_fill(side="BUY", quantity=D("2"), price=D("100"), fee=D("0.2"))
    p.apply_fill(side="SELL", quantity=D("2"), price=D("103"), fee=D("0.206"))
    assert p.quantity == 0
    assert p.realized_pnl == D("6") - D("0.406")
    assert p.fees_paid == D("0.406")


def test_a_fill_through_zero_opens_the_rest_at_the_fill_price():
    p = PositionState()
    p.apply_fill(side="BUY", quantity=D("1"), price=D("100"), fee=D("0"))
    p.apply_fill(side="SELL", quantity=D("3"), price=D("90"), fee=D("0"))
    assert (p.quantity, p.average_price, p.realized_pnl) == (D("-2"), D("90"), D("-10"))
    assert p.unrealized_pnl(D("80")) == D("20")
