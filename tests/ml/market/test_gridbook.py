"""GridBook: the C price-grid book against the dict OrderBook, bad input, far levels, re-centring."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ml.market.cob import cob_frame
from ml.market.events import OrderBookDelta, OrderBookSnapshot
from ml.market.gridbook import GridBook, InvalidBookState, InvalidLevels, tick_decimals
from ml.market.orderbook import OrderBook
from ml.market.sync import BookSynchronizer


def _snapshot(bids, asks, last=100) -> OrderBookSnapshot:
    return OrderBookSnapshot("ETHUSDT", last, tuple(bids), tuple(asks))


def _both(bids, asks) -> tuple[GridBook, OrderBook]:
    grid, plain = GridBook(0.01, window_ticks=8192), OrderBook()
    for book in (grid, plain):
        book.apply_snapshot(_snapshot(bids, asks))
    return grid, plain


def test_the_session_books_equal_the_venue_truth_level_for_level(spot_run, spot_venue):
    for symbol, book in spot_run.end_books.items():
        assert isinstance(book, GridBook)
        truth = OrderBook()
        truth.apply_snapshot(OrderBookSnapshot(symbol, 0, tuple(book.levels("bid")), tuple(book.levels("ask"))))
        assert book.levels("bid") == truth.levels("bid")  # best-first, far (overflow) levels included
        assert book.levels("ask", 50) == truth.levels("ask", 50)
        assert book.stats["overflow_sets"] > 0  # the recording has levels far outside the window


def test_it_rejects_nan_negative_and_off_tick_prices_and_applies_nothing():
    grid, _ = _both([(100.0, 1.0)], [(100.01, 1.0)])
    for bad in ([(float("nan"), 1.0)], [(-5.0, 1.0)], [(0.0, 1.0)], [(99.995, 1.0)], [(99.0, -1.0)],
                [(99.0, float("nan"))], [(99.0, math.inf)]):
        with pytest.raises(InvalidLevels, match="update not applied"):
            grid.apply_levels([(99.5, 2.0), *bad], [])
        assert grid.size("bid", 99.5) == 0.0  # the good level of the same update is not applied
    assert grid.levels("bid") == [(100.0, 1.0)]


def test_best_prices_follow_deletes_into_far_overflow_levels():
    grid, plain = _both([(100.0, 1.0), (1.0, 3.0)], [(100.01, 1.0), (90000.0, 2.0)])
    for book in (grid, plain):
        book.apply_levels([(100.0, 0.0)], [(100.01, 0.0), (100.02, 0.0)])  # deleting an absent level is fine
    assert (grid.best_bid(), grid.best_ask()) == (1.0, 90000.0) == (plain.best_bid(), plain.best_ask())
    assert grid == plain and grid.depth("bid") == 1


def test_a_frame_far_from_the_window_recentres_it_and_keeps_every_level():
    grid, plain = _both([(100.0, 1.0), (99.5, 2.0)], [(100.01, 1.0)])
    moves = [(200.0 + i, 1.0 + i) for i in range(10)]  # 100 USD = 10,000 ticks away: outside 8,192
    for book in (grid, plain):
        book.apply_levels([(100.0, 0.0), (99.5, 0.0)], [(100.01, 0.0)])
        book.apply_levels(moves, [(210.5, 4.0), (300.0, 1.0)])
    got, want = cob_frame(grid, "X", 0, 1.0, 20), cob_frame(plain, "X", 0, 1.0, 20)
    assert grid.stats["recenters"] >= 1
    assert np.array_equal(got.bid_usd, want.bid_usd) and np.array_equal(got.ask_usd, want.ask_usd)
    assert (got.mid, got.first_bucket_price) == (want.mid, want.first_bucket_price)
    assert grid == plain


def test_a_crossed_or_one_sided_book_gives_no_frame():
    grid, _ = _both([(100.0, 1.0)], [])
    assert cob_frame(grid, "X", 0, 1.0) is None
    grid.apply_levels([], [(99.0, 1.0)])
    with pytest.raises(InvalidBookState, match="crossed"):
        cob_frame(grid, "X", 0, 1.0)


def test_a_frame_wider_than_the_window_is_refused():
    grid, _ = _both([(100.0, 1.0)], [(100.01, 1.0)])
    with pytest.raises(InvalidBookState, match="does not fit"):
        grid.frame_buckets(10.0, 20)  # 410 USD = 41,000 ticks > 8,192


def test_a_delta_with_invalid_levels_is_counted_and_resynced_from_a_snapshot():
    good = _snapshot([(100.0, 1.0)], [(100.01, 1.0)], last=10)
    sync = BookSynchronizer("ETHUSDT", "spot", snapshot_source=lambda _: _snapshot(
        [(100.0, 2.0)], [(100.01, 1.0)], last=11), book=GridBook(0.01, 4096))
    sync.apply_snapshot(good)
    sync.apply_delta(OrderBookDelta("ETHUSDT", 1, 11, 11, None, ((float("nan"), 1.0),), ()))
    assert not sync.synced and sync.book.levels("bid") == [(100.0, 1.0)]  # nothing applied
    sync.apply_delta(OrderBookDelta("ETHUSDT", 2, 12, 12, None, ((99.0, 5.0),), ()))  # resyncs, then applies

    assert (sync.stats.rejected, sync.stats.gaps, sync.stats.resyncs) == (1, 1, 1)
    assert sync.synced and sync.book.levels("bid") == [(100.0, 2.0), (99.0, 5.0)]


def test_tick_sizes_must_be_powers_of_ten():
    assert (tick_decimals(0.01), tick_decimals(0.1), tick_decimals(1.0)) == (2, 1, 0)
    with pytest.raises(ValueError, match="power of ten"):
        tick_decimals(0.05)


def test_the_session_falls_back_to_the_python_book_without_a_compiler(monkeypatch, spot_venue, spot_run):
    import itertools

    from ml.market import session as session_module
    from ml.market.native import NativeBuildError
    from ml.market.session import MarketSession
    from tests.ml.market.recorded import SPOT_SPECS

    def no_compiler(*args, **kwargs):
        raise NativeBuildError("C compiler 'gcc' not found")

    monkeypatch.setattr(session_module, "GridBook", no_compiler)
    results = list(itertools.islice(MarketSession(spot_venue, SPOT_SPECS).seconds(), 20))

    assert all(type(r.books["ETHUSDT"]) is OrderBook for r in results)
    for result, want in zip(results, spot_run.frames["ETHUSDT"][:20], strict=True):
        assert np.array_equal(result.frames["ETHUSDT"].bid_usd, want.bid_usd)
