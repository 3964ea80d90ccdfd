"""MEXC spot v3 JSON parser.

There is no recorded MEXC message in the data directory: these messages are written here from
the examples in MEXC's spot v3 websocket documentation (mexcdevelop/apidocs, "Trade Streams" and
"Diff.Depth Stream"; the same examples appear in ccxt's pro/mexc handleTrades / handleOrderBook).
"""
from __future__ import annotations

import orjson
import pytest

from ml.market.errors import MalformedMessage
from ml.market.events import OrderBookDelta, Trade
from ml.market.venues import mexc

DEALS = {"c": "spot@public.deals.v3.api@BTCUSDT",
         "d": {"deals": [{"S": 2, "p": "20233.84", "t": 1661927587825, "v": "0.001028"}],
               "e": "spot@public.deals.v3.api"},
         "s": "BTCUSDT", "t": 1661927587836}
DEPTH = {"c": "spot@public.increase.depth.v3.api@BTCUSDT",
         "d": {"asks": [{"p": "20290.89", "v": "0.000000"}], "e": "spot@public.increase.depth.v3.api",
               "r": "3407459756"},
         "s": "BTCUSDT", "t": 1661932660144}


def test_it_parses_the_documented_deal_as_a_taker_sell():
    assert mexc.parse_message(orjson.dumps(DEALS)) == [
        Trade(symbol="BTCUSDT", ts_event=1661927587825, trade_id=0, price=20233.84, size=0.001028,
              is_buyer_maker=True)]


def test_a_taker_buy_is_side_1():
    msg = orjson.loads(orjson.dumps(DEALS))
    msg["d"]["deals"].append({"S": 1, "p": "20233.85", "t": 1661927587826, "v": "0.5"})

    trades = mexc.parse_message(msg)

    assert [t.is_buyer_maker for t in trades] == [True, False]


def test_it_parses_the_documented_depth_update_with_its_version():
    [delta] = mexc.parse_message(orjson.dumps(DEPTH).decode())

    assert delta == OrderBookDelta(symbol="BTCUSDT", ts_event=1661932660144, first_update_id=3407459756,
                                   final_update_id=3407459756, prev_final_update_id=None, bids=(),
                                   asks=((20290.89, 0.0),))


def test_the_version_may_be_named_version():
    msg = orjson.loads(orjson.dumps(DEPTH))
    msg["d"]["version"] = msg["d"].pop("r")

    assert mexc.parse_message(msg)[0].final_update_id == 3407459756


def test_book_continues_needs_the_next_version():
    delta = OrderBookDelta("BTCUSDT", 1, 3407459757, 3407459757, None, (), ())

    assert mexc.book_continues(3407459756, delta)
    assert not mexc.book_continues(3407459755, delta)


def test_replies_and_other_channels_are_ignored():
    assert mexc.parse_message({"id": 0, "code": 0, "msg": "spot@public.deals.v3.api@BTCUSDT"}) is None
    assert mexc.parse_message({"c": "spot@public.bookTicker.v3.api@BTCUSDT", "d": {}, "s": "BTCUSDT"}) is None


def test_it_names_a_missing_version():
    msg = orjson.loads(orjson.dumps(DEPTH))
    del msg["d"]["r"]

    with pytest.raises(MalformedMessage, match=r"spot@public.increase.depth.v3.api@BTCUSDT: field 'r' missing"):
        mexc.parse_message(msg)


def test_it_names_an_unknown_side():
    msg = orjson.loads(orjson.dumps(DEALS))
    msg["d"]["deals"][0]["S"] = 3

    with pytest.raises(MalformedMessage, match=r"field 'S' must be 1 \(buy\) or 2 \(sell\), got 3"):
        mexc.parse_message(msg)
