"""Coinbase Advanced Trade parser, on the recorded messages of ws_samples/cryptofeed_COINBASE.jsonl.zst."""
from __future__ import annotations

from collections import Counter

import pytest

from ml.market.errors import MalformedMessage
from ml.market.events import Candle, OrderBookSnapshot, Trade
from ml.market.venues import coinbase
from tests.ml.market.venues.conftest import LocalBook


@pytest.fixture(scope="module")
def frames(ws_sample):
    return ws_sample("COINBASE")


def _channel(frames, channel):
    return [f for f in frames if f.data.startswith('{"channel":"' + channel + '"')]


def test_it_parses_the_btc_snapshot(frames):
    [snapshot] = coinbase.parse_message(_channel(frames, "l2_data")[0].data)

    assert isinstance(snapshot, OrderBookSnapshot)
    assert snapshot.symbol == "BTCUSD"
    assert snapshot.last_update_id == 13  # the connection's sequence_num
    assert snapshot.ts_event == 1786309548170  # event_time 21:05:48.170326
    assert snapshot.bids[:2] == ((65083.66, 0.20371215), (65083.27, 0.02244516))
    raw = _channel(frames, "l2_data")[0].json()["events"][0]["updates"]
    assert len(snapshot.bids) == sum(u["side"] == "bid" for u in raw) > 0
    assert len(snapshot.asks) == sum(u["side"] == "offer" for u in raw) > 0


def test_every_book_message_parses_and_the_connection_sequence_has_no_gap(frames):
    kinds: Counter[str] = Counter()
    books: dict[str, LocalBook] = {}
    previous = None
    for frame in frames:
        sequence_num = frame.json()["sequence_num"]
        assert coinbase.sequence_continues(previous, sequence_num), (previous, sequence_num)
        previous = sequence_num
        if not frame.data.startswith('{"channel":"l2_data"'):
            continue
        for event in coinbase.parse_message(frame.data):
            kinds[type(event).__name__] += 1
            if isinstance(event, OrderBookSnapshot):
                books[event.symbol] = LocalBook(event.bids, event.asks)
            else:
                assert event.first_update_id == event.final_update_id == sequence_num
                books[event.symbol].apply(event.bids, event.asks)

    assert kinds == {"OrderBookSnapshot": 2, "OrderBookDelta": 773}
    for symbol, book in books.items():
        (best_bid, _), (best_ask, _) = book.top(1)[0][0], book.top(1)[1][0]
        assert best_bid < best_ask, symbol


def test_sequence_continues_rejects_a_lost_message():
    assert coinbase.sequence_continues(41, 42)
    assert not coinbase.sequence_continues(41, 43)
    assert not coinbase.sequence_continues(41, 41)


def test_it_parses_the_first_trade_with_the_maker_side(frames):
    trades = coinbase.parse_message(_channel(frames, "market_trades")[0].data)

    assert trades[0] == Trade(symbol="BTCUSD", ts_event=1786309542514, trade_id=1068572090, price=65083.67,
                              size=0.002186, is_buyer_maker=False)
    # The ticker a moment later shows best bid 65083.66 / best ask 65083.67: the trade at the ask
    # (side "SELL", the maker's side) was a buying taker, so the buyer was not the maker.
    ticker = _channel(frames, "ticker")[0].json()["events"][0]["tickers"][0]
    assert (ticker["best_bid"], ticker["best_ask"]) == ("65083.66", "65083.67")
    at_bid = next(t for t in trades if t.price == 65083.66)
    assert at_bid.is_buyer_maker is True


def test_every_trade_and_candle_parses(frames):
    events = [e for f in frames for e in coinbase.parse_message(f.data) or ()]
    trades = [e for e in events if isinstance(e, Trade)]
    candles = [e for e in events if isinstance(e, Candle)]

    assert len(trades) == 279
    assert {t.symbol for t in trades} == {"BTCUSD", "ETHUSD"}
    assert len(candles) == 204
    assert candles[0] == Candle(symbol="ETHUSD", timeframe="5m", open_time=1786279500000, open=1916.11,
                                high=1916.6, low=1915.91, close=1916.02, volume=13.9044026)


def test_tickers_heartbeats_and_subscriptions_are_ignored(frames):
    for channel in ("ticker", "heartbeats", "subscriptions"):
        assert coinbase.parse_message(_channel(frames, channel)[0].data) is None


def test_it_names_a_bad_event_time(frames):
    msg = _channel(frames, "l2_data")[1].json()
    msg["events"][0]["updates"][0]["event_time"] = "yesterday"

    with pytest.raises(MalformedMessage, match=r"l2_data: field 'event_time' is not an RFC 3339 UTC time"):
        coinbase.parse_message(msg)


def test_it_names_an_unknown_side(frames):
    msg = _channel(frames, "l2_data")[1].json()
    msg["events"][0]["updates"][0]["side"] = "ask"

    with pytest.raises(MalformedMessage, match=r"field 'side' must be bid or offer, got 'ask'"):
        coinbase.parse_message(msg)
