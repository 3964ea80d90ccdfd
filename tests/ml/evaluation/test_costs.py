"""Trading costs: the cost model, spread, and book walks on synthetic and recorded Binance books."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml.backtest.batch import FrozenBook
from ml.evaluation.costs import CostModel, slippage_bps, slippage_from_frozen_book, spread_bps, walk_book
from ml.market.orderbook import OrderBook
from ml.market.recording import default_spot_session
from ml.market.replay import ReplayVenue

ASKS = np.array([[100.0, 1.0], [101.0, 1.0], [102.0, 1.0]])
BIDS = np.array([[100.0, 1.0], [99.0, 1.0]])


# ----------------------------------------------------------------------------- CostModel

def test_the_default_round_trip_is_two_taker_fees_plus_the_full_spread():
    assert CostModel().round_trip_bps() == pytest.approx(2 * 10.0 + 1.0)


def test_overrides_replace_spread_and_slippage_and_maker_picks_the_maker_fee():
    model = CostModel(taker_fee_bps=7.5, maker_fee_bps=2.0, spread_bps=3.0, slippage_bps=0.5)

    assert model.round_trip_bps() == pytest.approx(15.0 + 3.0 + 1.0)
    assert model.round_trip_bps(maker=True) == pytest.approx(4.0 + 3.0 + 1.0)
    assert model.round_trip_bps(spread_bps=0.04, slippage_bps=2.5) == pytest.approx(15.0 + 0.04 + 5.0)


def test_breakdown_totals_each_kind_over_the_trades():
    model = CostModel(taker_fee_bps=10.0, spread_bps=1.5, slippage_bps=0.25)

    out = model.breakdown(4)

    assert out == pytest.approx({"fees": 80.0, "spread": 6.0, "slippage": 2.0})
    assert sum(out.values()) == pytest.approx(4 * model.round_trip_bps())
    assert model.breakdown(0) == {"fees": 0.0, "spread": 0.0, "slippage": 0.0}


def test_it_round_trips_through_a_dict():
    model = CostModel(taker_fee_bps=4.0, maker_fee_bps=1.0, spread_bps=0.2, slippage_bps=0.3)

    assert CostModel.from_dict(model.to_dict()) == model
    assert CostModel.from_dict({"spread_bps": 2.0}) == CostModel(spread_bps=2.0)


@pytest.mark.parametrize("bad", [{"taker_fee_bps": -1.0}, {"spread_bps": math.nan}, {"slippage_bps": math.inf},
                                 {"maker_fee_bps": "10"}])
def test_it_rejects_a_negative_or_non_finite_field_by_name(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        CostModel(**bad)


def test_it_rejects_unknown_keys_bad_overrides_and_bad_trade_counts():
    with pytest.raises(ValueError, match="unknown CostModel fields"):
        CostModel.from_dict({"fee": 1.0})
    with pytest.raises(ValueError, match="spread_bps"):
        CostModel().round_trip_bps(spread_bps=-0.1)
    with pytest.raises(ValueError, match="trades"):
        CostModel().breakdown(-1)
    with pytest.raises(ValueError, match="trades"):
        CostModel().breakdown(1.5)


# ----------------------------------------------------------------------------- spread and book walks

def test_spread_is_in_bps_of_the_mid():
    assert spread_bps(99.995, 100.005) == pytest.approx(1.0)
    assert spread_bps(100.0, 100.0) == 0.0


@pytest.mark.parametrize("bid, ask", [(100.1, 100.0), (0.0, 1.0), (-1.0, 1.0), (math.nan, 1.0)])
def test_it_rejects_a_crossed_or_non_positive_book(bid, ask):
    with pytest.raises(ValueError):
        spread_bps(bid, ask)


def test_a_fill_inside_the_first_level_is_at_the_touch():
    assert walk_book(ASKS, 50.0) == (100.0, 50.0)
    assert walk_book(ASKS, np.float32(50.0)) == (100.0, 50.0)
    assert slippage_bps(ASKS, 50.0) == 0.0


def test_a_fill_across_levels_pays_the_vwap():
    vwap, filled = walk_book(ASKS, 150.0)

    assert filled == 150.0
    assert vwap == pytest.approx(150.0 / (1.0 + 50.0 / 101.0))
    assert slippage_bps(ASKS, 150.0) == pytest.approx(1e4 * (150.0 / (1.0 + 50.0 / 101.0) / 100.0 - 1.0))
    assert slippage_bps(BIDS, 150.0) == pytest.approx(1e4 * (1.0 - 150.0 / (1.0 + 50.0 / 99.0) / 100.0))


def test_a_thin_book_gives_a_partial_fill_at_the_vwap_of_every_level():
    vwap, filled = walk_book(ASKS, 1_000.0)

    assert filled == pytest.approx(303.0)
    assert vwap == pytest.approx(101.0)


@pytest.mark.parametrize("levels, quantity, match", [
    (np.zeros((0, 2)), 10.0, "empty book"),
    (np.array([100.0, 1.0]), 10.0, "shape"),
    (np.array([[100.0, 1.0], [99.0, 1.0], [101.0, 1.0]]), 10.0, "monotonic"),
    (np.array([[100.0, 0.0]]), 10.0, "sizes > 0"),
    (ASKS, 0.0, "quantity_usd"),
    (ASKS, -5.0, "quantity_usd"),
])
def test_it_rejects_bad_books_and_quantities(levels, quantity, match):
    with pytest.raises(ValueError, match=match):
        walk_book(levels, quantity)


@st.composite
def _asks(draw) -> np.ndarray:
    n = draw(st.integers(1, 12))
    steps = draw(st.lists(st.floats(0.01, 5.0), min_size=n, max_size=n))
    sizes = draw(st.lists(st.floats(0.001, 50.0), min_size=n, max_size=n))
    return np.column_stack([1_000.0 + np.cumsum(steps), sizes])


@given(_asks(), st.floats(1.0, 1e5), st.floats(1.0, 1e5))
def test_slippage_never_falls_as_the_order_grows(levels, q1, q2):
    small, large = sorted((q1, q2))
    vwap, filled = walk_book(levels, large)

    assert slippage_bps(levels, small) <= slippage_bps(levels, large) + 1e-9
    tol = 1e-9 * levels[-1, 0]  # a VWAP of one level may round below its price by an ulp
    assert levels[0, 0] - tol <= vwap <= levels[-1, 0] + tol
    assert filled <= large + 1e-9


# ----------------------------------------------------------------------------- the recorded Binance spot session

@pytest.fixture(scope="module")
def eth_books() -> dict[str, FrozenBook]:
    """ETHUSDT books from the recorded spot session: the recorded REST snapshot, and the venue's
    own book after the last recorded event (1,000 levels a side kept, as a backtest does)."""
    venue = ReplayVenue({"ETHUSDT": default_spot_session()["ETHUSDT"]})
    first = OrderBook()
    first.apply_snapshot(venue.snapshot("ETHUSDT"))
    for _ in venue.events():
        pass
    return {"snapshot": FrozenBook(first, 1000), "end": FrozenBook(venue.truth_book("ETHUSDT"), 1000)}


@pytest.mark.parametrize("which", ["snapshot", "end"])
def test_recorded_slippage_is_zero_inside_the_touch_and_grows_with_size(eth_books, which):
    book = eth_books[which]
    for side in ("buy", "SELL"):
        slips = [slippage_from_frozen_book(book, side, q) for q in (1e3, 1e4, 1e5, 3e5, 1e6, 3e6)]

        assert slips[0] == 0.0
        assert all(a <= b for a, b in zip(slips, slips[1:], strict=False))
        assert 0.0 < slips[-1] < 50.0  # $3M still fits in the 1,000 kept levels (about ±0.45%)


@pytest.mark.parametrize("which", ["snapshot", "end"])
def test_the_recorded_spread_is_one_tick(eth_books, which):
    book = eth_books[which]

    assert spread_bps(book.best_bid(), book.best_ask()) == pytest.approx(1e4 * 0.01 / book.mid(), rel=1e-6)
    assert spread_bps(book.best_bid(), book.best_ask()) < 0.05


def test_selling_on_the_recorded_snapshot_walks_its_first_three_bids(eth_books):
    # bids best first: (2683.8, 3.0292), (2683.78, 0.002), (2683.77, 0.0446) (tests/ml/market/test_orderbook.py)
    first_two_usd = 2683.8 * 3.0292 + 2683.78 * 0.002
    base = 3.0292 + 0.002 + (8_200.0 - first_two_usd) / 2683.77

    assert slippage_from_frozen_book(eth_books["snapshot"], "sell", 8_200.0) == pytest.approx(
        1e4 * (1.0 - 8_200.0 / base / 2683.8), rel=1e-9)


def test_recorded_slippage_of_large_orders_is_pinned(eth_books):
    book = eth_books["snapshot"]

    assert slippage_from_frozen_book(book, "buy", 1e5) == pytest.approx(0.1104, abs=1e-4)
    assert slippage_from_frozen_book(book, "sell", 1e5) == pytest.approx(1.0715, abs=1e-4)
    assert slippage_from_frozen_book(book, "buy", 1e6) == pytest.approx(2.6769, abs=1e-4)


def test_the_adapter_rejects_a_bad_side(eth_books):
    with pytest.raises(ValueError, match="side"):
        slippage_from_frozen_book(eth_books["end"], "hold", 1e3)
