import pytest

from ml.execution.paper import InsufficientLiquidity, walk_book


def test_it_fills_inside_the_best_level_at_one_price():
    fills = walk_book([(100.0, 2.0), (101.0, 5.0)], 1.5, fee_rate=0.001)
    assert [(f.price, f.size) for f in fills] == [(100.0, 1.5)]
    assert fills[0].fee == pytest.approx(0.15)


def test_it_walks_several_levels_best_first():
    fills = walk_book([(100.0, 1.0), (101.0, 1.0), (102.0, 5.0)], 2.5, fee_rate=0.001)
    assert [(f.price, f.size) for f in fills] == [(100.0, 1.0), (101.0, 1.0), (102.0, 0.5)]
    notional = sum(f.price * f.size for f in fills)
    assert notional == pytest.approx(252.0)
    assert sum(f.fee for f in fills) == pytest.approx(0.252)


def test_it_refuses_more_than_the_book_holds():
    with pytest.raises(InsufficientLiquidity, match="holds 3.00000000 of 4.00000000"):
        walk_book([(100.0, 1.0), (101.0, 2.0)], 4.0, fee_rate=0.0)


def test_it_rejects_a_non_positive_quantity():
    with pytest.raises(ValueError, match="quantity must be > 0"):
        walk_book([(100.0, 1.0)], 0.0, fee_rate=0.0)
