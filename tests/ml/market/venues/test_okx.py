"""OKX v5 parser, on the recorded messages of ws_samples/cryptofeed_OKX.jsonl.zst (2022)."""
from __future__ import annotations

from collections import Counter

import pytest

from ml.market.errors import MalformedMessage
from ml.market.events import OrderBookSnapshot, Trade
from ml.market.venues import okx
from tests.ml.market.venues.conftest import LocalBook

BOOK_DEPTH = 400  # the "books" channel keeps 400 levels a side


@pytest.fixture(scope="module")
def frames(ws_sample):
    return ws_sample("OKX")


def _book_frames(frames):
    return [f for f in frames if '"channel":"books"' in f.data[:40] and '"action"' in f.data[:80]]


def test_it_parses_the_first_snapshot_of_a_future(frames):
    [snapshot] = okx.parse_message(_book_frames(frames)[0].data)

    assert isinstance(snapshot, OrderBookSnapshot)
    assert snapshot.symbol == "BTCUSD_220527"  # instId BTC-USD-220527
    assert snapshot.last_update_id == 0  # the 2022 messages carry no seqId
    assert snapshot.asks[0] == (30238.8, 2.0)
    assert snapshot.bids[0] == (30233.6, 3.0)
    assert snapshot.ts_event is not None and snapshot.ts_event > 1652459200000


def test_every_book_message_parses_and_its_checksum_matches_the_local_book(frames):
    kinds: Counter[str] = Counter()
    books: dict[str, LocalBook] = {}
    for frame in _book_frames(frames):
        [event] = okx.parse_message(frame.data)
        kinds[type(event).__name__] += 1
        if isinstance(event, OrderBookSnapshot):
            books[event.symbol] = LocalBook(event.bids, event.asks)
            continue
        assert event.first_update_id == 0 and event.prev_final_update_id is None
        book = books[event.symbol]
        book.apply(event.bids, event.asks)
        book.truncate(BOOK_DEPTH)
        assert okx.book_checksum(*book.top(25)) == event.final_update_id, (event.symbol, event.ts_event)

    assert kinds == {"OrderBookSnapshot": 3, "OrderBookDelta": 287}
    assert set(books) == {"BTCUSD_220527", "UNIUSD", "BTCUSDT"}


def test_a_wrong_level_breaks_the_checksum(frames):
    [snapshot] = okx.parse_message(_book_frames(frames)[0].data)
    first_update = next(f for f in _book_frames(frames)[3:] if '"instId":"BTC-USD-220527"' in f.data)
    [delta] = okx.parse_message(first_update.data)
    book = LocalBook(snapshot.bids, snapshot.asks)
    book.apply(delta.bids, delta.asks)
    assert okx.book_checksum(*book.top(25)) == delta.final_update_id

    book.apply((), ((30261.0, 5.0),))  # one size off

    assert okx.book_checksum(*book.top(25)) != delta.final_update_id


def test_it_parses_the_first_trade(frames):
    first = next(f for f in frames if '"channel":"trades"' in f.data[:40] and '"data"' in f.data)

    assert okx.parse_message(first.data) == [Trade(symbol="BTCUSD_220527", ts_event=1652459199958, trade_id=7849,
                                                   price=30218.8, size=1.0, is_buyer_maker=False)]


def test_every_trade_message_parses(frames):
    trades = [e for f in frames for e in okx.parse_message(f.data) or () if isinstance(e, Trade)]

    assert len(trades) == 74
    assert Counter(t.symbol for t in trades) == {"BTCUSDT": 69, "BTCUSD_220527": 4, "UNIUSD": 1}


def test_sequence_ids_are_carried_when_the_message_has_them():
    """A message in the current OKX format (docs example, written here: the sample predates seqId)."""
    update = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
              "data": [{"asks": [["8476.98", "415", "0", "13"]], "bids": [["8476.97", "256", "0", "12"]],
                        "ts": "1597026383085", "checksum": -1200119424, "seqId": 123457, "prevSeqId": 123456}]}

    [delta] = okx.parse_message(update)

    assert (delta.first_update_id, delta.final_update_id, delta.prev_final_update_id) == (123457, 123457, 123456)
    assert okx.book_continues(123456, delta)
    assert not okx.book_continues(123455, delta)


def test_subscribe_events_and_tickers_are_ignored(frames):
    event = next(f for f in frames if f.data.startswith('{"event":"subscribe"'))
    ticker = next(f for f in frames if '"channel":"tickers"' in f.data and '"data"' in f.data)

    assert okx.parse_message(event.data) is None
    assert okx.parse_message(ticker.data) is None


def test_it_names_a_missing_checksum(frames):
    msg = _book_frames(frames)[5].json()
    del msg["data"][0]["checksum"]

    with pytest.raises(MalformedMessage, match=r"books:.*field 'checksum' missing"):
        okx.parse_message(msg)
