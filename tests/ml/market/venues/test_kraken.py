"""Kraken v1 parser, on the recorded messages of ws_samples/cryptofeed_KRAKEN.jsonl.zst (2021)."""
from __future__ import annotations

from collections import Counter

import pytest

from ml.market.errors import MalformedMessage
from ml.market.events import OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.venues import kraken
from tests.ml.market.venues.conftest import LocalBook

BOOK_DEPTH = 1000  # subscribed as book-1000


@pytest.fixture(scope="module")
def frames(ws_sample):
    return ws_sample("KRAKEN")


def _book_frames(frames):
    return [f for f in frames if '"book-1000"' in f.data[-40:]]


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def test_it_parses_a_snapshot_with_the_pair_normalized(frames):
    snapshot_frame = next(f for f in _book_frames(frames) if f.data.endswith('"XBT/CHF"]') and '"as"' in f.data)

    [snapshot] = kraken.parse_message(snapshot_frame.data)

    assert isinstance(snapshot, OrderBookSnapshot)
    assert snapshot.symbol == "BTCCHF"
    assert snapshot.asks[0] == (56218.3, 0.15)
    assert snapshot.bids[0] == (56119.0, 0.14375128)
    assert (len(snapshot.bids), len(snapshot.asks)) == (502, 316)  # all the levels Kraken had
    assert snapshot.ts_event == 1618678133149  # the latest level time, 1618678133.149937 s


def test_every_book_message_parses_and_its_checksum_matches_the_local_book(frames):
    kinds: Counter[str] = Counter()
    books: dict[str, LocalBook] = {}
    decimals: dict[str, tuple[int, int]] = {}
    for frame in _book_frames(frames):
        [event] = kraken.parse_message(frame.data)
        kinds[type(event).__name__] += 1
        if isinstance(event, OrderBookSnapshot):
            books[event.symbol] = LocalBook(event.bids, event.asks)
            price_text, size_text, _ = frame.json()[1]["as"][0]
            decimals[event.symbol] = (_decimals(price_text), _decimals(size_text))
            continue
        book = books[event.symbol]
        book.apply(event.bids, event.asks)
        book.truncate(BOOK_DEPTH)
        bids, asks = book.top(kraken.CHECKSUM_DEPTH)
        assert kraken.book_checksum(bids, asks, *decimals[event.symbol]) == event.final_update_id, event

    assert kinds == {"OrderBookSnapshot": 10, "OrderBookDelta": 4269}


def test_an_update_with_both_sides_is_one_delta(frames):
    both = next(f for f in _book_frames(frames) if f.data.count("{") == 2)

    [delta] = kraken.parse_message(both.data)

    assert isinstance(delta, OrderBookDelta)
    assert delta.symbol == "SCEUR"
    assert delta.asks == ((0.04299, 364630.28272081),)
    assert delta.bids == ((0.04299, 0.0),)
    assert (delta.first_update_id, delta.final_update_id) == (0, 4105471083)
    assert delta.ts_event == 1618678145920


def test_it_parses_the_first_trade(frames):
    first = next(f for f in frames if f.data.endswith('"trade","XMR/USD"]'))

    assert kraken.parse_message(first.data) == [
        Trade(symbol="XMRUSD", ts_event=1618678142557, trade_id=0, price=354.11, size=0.89594024,
              is_buyer_maker=True)]  # side "s": the taker sold


def test_events_and_tickers_are_ignored(frames):
    heartbeat = next(f for f in frames if f.data == '{"event":"heartbeat"}')
    ticker = next(f for f in frames if f.data.endswith('"ticker","XMR/USD"]'))

    assert kraken.parse_message(heartbeat.data) is None
    assert kraken.parse_message(ticker.data) is None


def test_it_names_a_missing_checksum(frames):
    msg = _book_frames(frames)[20].json()
    assert "c" in msg[1]
    del msg[1]["c"]

    with pytest.raises(MalformedMessage, match=r"book-1000:.*field 'c' missing"):
        kraken.parse_message(msg)
