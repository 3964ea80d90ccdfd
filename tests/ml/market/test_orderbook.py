"""The local order book, on the recorded ETHUSDT spot snapshot."""
from __future__ import annotations

import pytest

from ml.market.binance import parse_message
from ml.market.events import OrderBookSnapshot
from ml.market.orderbook import OrderBook


@pytest.fixture(scope="module")
def eth_snapshot(recorded_line) -> OrderBookSnapshot:
    line = recorded_line("binance_spot/ethusdt_20240808.gz",
                         lambda p: p.startswith(b'{"lastUpdateId"'))
    return parse_message(line, symbol="ETHUSDT")


@pytest.fixture
def book(eth_snapshot) -> OrderBook:
    book = OrderBook()
    book.apply_snapshot(eth_snapshot)
    return book


def test_a_snapshot_gives_best_prices_mid_and_spread(book):
    assert (book.best_bid(), book.best_ask()) == (2683.8, 2683.81)
    assert book.mid() == pytest.approx(2683.805, abs=1e-9)
    assert book.spread() == pytest.approx(0.01, abs=1e-9)
    assert (book.depth("bid"), book.depth("ask")) == (1000, 1000)
    assert not book.is_crossed()


def test_levels_are_best_first_and_limited_by_depth(book):
    assert book.levels("bid", 3) == [(2683.8, 3.0292), (2683.78, 0.002), (2683.77, 0.0446)]
    assert book.levels("ask", 3) == [(2683.81, 31.4395), (2683.9, 0.02), (2684.0, 9.9803)]
    assert book.levels("bid")[-1] == (2660.6, 0.0072)
    assert book.levels("ask")[-1] == (2711.76, 0.0116)
    assert len(book.levels("ask", 5000)) == 1000
    assert book.levels("bid", 0) == []


def test_prices_sizes_between_is_a_half_open_price_range_best_first(book):
    prices, sizes = book.prices_sizes_between("bid", 2683.0, 2683.2)
    levels = list(zip(prices.tolist(), sizes.tolist(), strict=True))

    assert levels[0] == (2683.19, 6.2666)
    assert levels[-1] == (2683.0, 4.238)
    assert levels == [lv for lv in book.levels("bid") if 2683.0 <= lv[0] < 2683.2]
    asks, _ = book.prices_sizes_between("ask", 2683.81, 2684.0)
    assert asks.tolist() == [2683.81, 2683.9]  # 2684.0 is the excluded upper edge


def test_size_zero_deletes_and_a_new_price_moves_the_best(book):
    n = book.apply_levels(bids=[(2683.8, 0.0), (2683.79, 1.5)], asks=[(2683.81, 2.0)])

    assert n == 3
    assert book.best_bid() == 2683.79
    assert book.size("bid", 2683.8) == 0.0
    assert book.size("ask", 2683.81) == 2.0
    assert book.depth("bid") == 1000  # one deleted, one added


def test_deleting_an_absent_level_is_harmless(book):
    before = book.copy()

    book.apply_levels(bids=[(1.0, 0.0)], asks=[])

    assert book == before


def test_it_reports_a_crossed_book(book):
    book.apply_levels(bids=[(2683.81, 1.0)], asks=[])

    assert book.is_crossed()


def test_a_copy_is_independent(book):
    copy = book.copy()
    book.apply_levels(bids=[], asks=[(2683.81, 0.0)])

    assert copy.best_ask() == 2683.81
    assert book.best_ask() == 2683.9
    assert copy != book


def test_an_empty_book_has_no_prices():
    book = OrderBook()

    assert (book.best_bid(), book.best_ask(), book.mid(), book.spread()) == (None,) * 4
    assert not book.is_crossed()
    with pytest.raises(ValueError, match="side must be 'bid' or 'ask'"):
        book.levels("buy")
