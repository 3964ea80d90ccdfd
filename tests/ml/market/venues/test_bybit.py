"""Bybit v5 parser, on the recorded messages of ws_samples/cryptofeed_BYBIT.jsonl.zst."""
from __future__ import annotations

import uuid
from collections import Counter

import pytest

from ml.market.errors import MalformedMessage
from ml.market.events import Candle, OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.venues import bybit
from tests.ml.market.venues.conftest import LocalBook

LINEAR = "BYBIT.ws.2"  # wss://stream.bybit.com/v5/public/linear
SPOT = "BYBIT.ws.3"  # wss://stream.bybit.com/v5/public/spot


@pytest.fixture(scope="module")
def frames(ws_sample):
    return ws_sample("BYBIT")


def _first(frames, conn, prefix):
    return next(f for f in frames if f.conn == conn and f.data.startswith('{"topic":"' + prefix))


def test_it_parses_the_first_linear_btc_book_snapshot(frames):
    [snapshot] = bybit.parse_message(_first(frames, LINEAR, "orderbook.200.BTCUSDT").data)

    assert isinstance(snapshot, OrderBookSnapshot)
    assert snapshot.symbol == "BTCUSDT"
    assert snapshot.last_update_id == 15076952
    assert snapshot.ts_event == 1786310818129
    assert (len(snapshot.bids), len(snapshot.asks)) == (200, 200)
    assert snapshot.bids[:2] == ((65114.2, 6.054), (65114.1, 0.002))


def test_it_parses_a_delta_with_its_update_id_and_zero_sizes(frames):
    first_delta = next(f for f in frames if f.conn == LINEAR and '"type":"delta"' in f.data[:60]
                       and f.data.startswith('{"topic":"orderbook.200.BTCUSDT"'))

    [delta] = bybit.parse_message(first_delta.data)

    assert isinstance(delta, OrderBookDelta)
    assert (delta.first_update_id, delta.final_update_id, delta.prev_final_update_id) == (15076953, 15076953, None)
    assert delta.ts_event == 1786310818130
    assert delta.bids[:3] == ((65095.3, 0.005), (65094.6, 0.076), (65093.1, 0.0))
    assert (len(delta.bids), len(delta.asks)) == (6, 16)


def test_every_book_message_parses_and_continues_its_update_id_chain(frames):
    kinds: Counter[str] = Counter()
    last_u: dict[tuple[str, str], int] = {}
    books: dict[tuple[str, str], LocalBook] = {}
    for frame in frames:
        if '"topic":"orderbook.' not in frame.data[:40]:
            continue
        [event] = bybit.parse_message(frame.data)
        key = (frame.conn, event.symbol)
        assert bybit.book_continues(last_u.get(key), event), key
        if isinstance(event, OrderBookSnapshot):
            last_u[key] = event.last_update_id
            books[key] = LocalBook(event.bids, event.asks)
        else:
            last_u[key] = event.final_update_id
            books[key].apply(event.bids, event.asks)
        kinds[type(event).__name__] += 1

    assert kinds == {"OrderBookSnapshot": 6, "OrderBookDelta": 2142}
    assert len(books) == 6  # BTC, ETH, SOL, DOGE perps + BTC, ETH spot
    for key, book in books.items():
        (best_bid, _), (best_ask, _) = book.top(1)[0][0], book.top(1)[1][0]
        assert best_bid < best_ask, key  # 2,142 deltas applied and the books never crossed


def test_book_continues_rejects_a_skipped_update_id():
    delta = OrderBookDelta("BTCUSDT", 1, 15076955, 15076955, None, (), ())

    assert bybit.book_continues(15076954, delta)
    assert not bybit.book_continues(15076953, delta)
    assert not bybit.book_continues(None, delta)  # no snapshot yet


def test_it_parses_the_first_trade_with_the_taker_side(frames):
    trades = bybit.parse_message(_first(frames, LINEAR, "publicTrade.").data)

    assert trades == [Trade(symbol="BTCUSDT", ts_event=1786310819680,
                            trade_id=uuid.UUID("a9188a0a-82bc-50de-be60-03eedbe3cdd7").int,
                            price=65114.2, size=0.004, is_buyer_maker=True)]  # "S": "Sell"


def test_a_trade_message_gives_one_trade_per_item(frames):
    message = _first(frames, LINEAR, "publicTrade.ETHUSDT")

    trades = bybit.parse_message(message.data)

    assert len(trades) == len(message.json()["data"]) > 1
    assert {(t.symbol, t.price, t.is_buyer_maker) for t in trades} == {("ETHUSDT", 1922.5, False)}
    assert trades[1].size == 1.3


def test_every_trade_message_parses(frames):
    trades = [e for f in frames for e in bybit.parse_message(f.data) or () if isinstance(e, Trade)]

    assert len(trades) == 347
    assert all(t.price > 0 and t.size > 0 for t in trades)


def test_only_confirmed_candles_are_returned(frames):
    candles = [e for f in frames for e in bybit.parse_message(f.data) or () if isinstance(e, Candle)]

    assert len(candles) == 6  # the 21:26 minute closing on 4 perps and 2 spot symbols
    eth = candles[0]
    assert eth == Candle(symbol="ETHUSDT", timeframe="1m", open_time=1786310760000, open=1922.43, high=1922.48,
                         low=1922.42, close=1922.48, volume=15.7, quote_volume=30182.0724)


def test_tickers_and_subscription_replies_are_ignored(frames):
    ticker = _first(frames, LINEAR, "tickers.")
    reply = next(f for f in frames if f.data.startswith('{"success":true'))

    assert bybit.parse_message(ticker.data) is None
    assert bybit.parse_message(reply.data) is None


def test_it_names_the_missing_update_id(frames):
    msg = _first(frames, SPOT, "orderbook.200.ETHUSDT").json()
    del msg["data"]["u"]

    with pytest.raises(MalformedMessage, match=r"orderbook.200.ETHUSDT: field 'u' missing"):
        bybit.parse_message(msg)


def test_it_rejects_a_nan_price(frames):
    msg = _first(frames, SPOT, "publicTrade.").json()
    msg["data"][0]["p"] = "NaN"

    with pytest.raises(MalformedMessage, match=r"field 'p' is not a finite number"):
        bybit.parse_message(msg)
