"""Binance message parsers, on lines taken from the real recordings."""
from __future__ import annotations

import orjson
import pytest

from ml.market.binance import parse_message
from ml.market.errors import MalformedMessage, MarketDataError
from ml.market.events import OrderBookDelta, OrderBookSnapshot, Trade

SPOT_ETH = "binance_spot/ethusdt_20240808.gz"
USDM_ETH = "binance_usdm/ethusdt_20240808.gz"


def _stream(name: bytes):
    return lambda payload: payload.startswith(b'{"stream":"' + name + b'"')


def _snapshot(payload: bytes) -> bool:
    return payload.startswith(b'{"lastUpdateId"')


def test_it_parses_a_spot_depth_update(recorded_line):
    delta = parse_message(recorded_line(SPOT_ETH, _stream(b"ethusdt@depth@100ms")))

    assert isinstance(delta, OrderBookDelta)
    assert delta.symbol == "ETHUSDT"
    assert delta.ts_event == 1723161255308
    assert (delta.first_update_id, delta.final_update_id) == (35346513499, 35346513505)
    assert delta.prev_final_update_id is None
    assert delta.bids[:2] == ((2683.8, 3.0292), (2679.0, 28.2153))
    assert len(delta.bids) == 6
    assert delta.asks == ((2733.7, 0.0),)  # size 0: delete the level


def test_it_parses_a_spot_snapshot_with_the_symbol_given_by_the_caller(recorded_line):
    snapshot = parse_message(recorded_line(SPOT_ETH, _snapshot), symbol="ETHUSDT")

    assert isinstance(snapshot, OrderBookSnapshot)
    assert snapshot.symbol == "ETHUSDT"
    assert snapshot.last_update_id == 35346513512
    assert snapshot.ts_event is None  # spot REST snapshots carry no exchange time
    assert (len(snapshot.bids), len(snapshot.asks)) == (1000, 1000)
    assert snapshot.bids[0] == (2683.8, 3.0292)
    assert snapshot.bids[1] == (2683.78, 0.002)


def test_it_parses_a_spot_trade(recorded_line):
    trade = parse_message(recorded_line(SPOT_ETH, _stream(b"ethusdt@trade")))

    assert trade == Trade(symbol="ETHUSDT", ts_event=1723161255611, trade_id=1520538925,
                          price=2683.8, size=0.002, is_buyer_maker=True)


def test_it_parses_a_futures_depth_update_with_pu(recorded_line):
    delta = parse_message(recorded_line(USDM_ETH, _stream(b"ethusdt@depth@0ms")))

    assert delta.ts_event == 1723161256303  # E, not the transaction time T
    assert (delta.first_update_id, delta.final_update_id) == (5123107832349, 5123107837896)
    assert delta.prev_final_update_id == 5123107832175
    assert delta.bids[0] == (200.0, 10.229)


def test_it_parses_a_futures_snapshot_with_its_event_time(recorded_line):
    snapshot = parse_message(recorded_line(USDM_ETH, _snapshot), symbol="ethusdt")

    assert snapshot.symbol == "ETHUSDT"
    assert snapshot.last_update_id == 5123107856276
    assert snapshot.ts_event == 1723161256567
    assert snapshot.bids[0] == (2681.62, 16.969)


def test_it_parses_a_futures_trade(recorded_line):
    trade = parse_message(recorded_line(USDM_ETH, _stream(b"ethusdt@trade")))

    assert (trade.trade_id, trade.ts_event, trade.price, trade.size) == (
        4308068523, 1723161256560, 2681.62, 1.0)
    assert trade.is_buyer_maker is True


def test_it_ignores_book_ticker_and_mark_price_streams(recorded_line):
    book_ticker = recorded_line(SPOT_ETH, _stream(b"ethusdt@bookTicker"))
    mark_price = recorded_line("binance_usdm/btcusdt_20230404.dat.gz",
                               _stream(b"btcusdt@markPrice@1s"))

    assert parse_message(book_ticker) is None
    assert parse_message(mark_price) is None


def test_it_accepts_a_bare_payload_and_a_decoded_dict(recorded_line):
    wrapped = orjson.loads(recorded_line(SPOT_ETH, _stream(b"ethusdt@trade")))

    from_dict = parse_message(wrapped)
    from_bare = parse_message(orjson.dumps(wrapped["data"]).decode())

    assert from_dict == from_bare
    assert from_dict.trade_id == 1520538925


def test_it_names_the_missing_field_of_a_depth_update(recorded_line):
    msg = orjson.loads(recorded_line(SPOT_ETH, _stream(b"ethusdt@depth@100ms")))
    del msg["data"]["u"]

    with pytest.raises(MalformedMessage, match=r"ethusdt@depth@100ms: field 'u' missing"):
        parse_message(msg)


def test_it_names_a_price_that_is_not_a_decimal_string(recorded_line):
    msg = orjson.loads(recorded_line(SPOT_ETH, _stream(b"ethusdt@trade")))
    msg["data"]["p"] = "abc"

    with pytest.raises(MalformedMessage, match=r"field 'p' not a decimal string: 'abc'"):
        parse_message(msg)


def test_it_names_a_bad_level_list(recorded_line):
    msg = orjson.loads(recorded_line(SPOT_ETH, _stream(b"ethusdt@depth@100ms")))
    msg["data"]["b"] = [["2683.8"]]

    with pytest.raises(MalformedMessage, match=r"field 'b' must hold \[price, qty\]"):
        parse_message(msg)


def test_it_rejects_a_non_integer_update_id():
    msg = {"e": "depthUpdate", "E": 1, "s": "ETHUSDT", "U": "1", "u": 2, "b": [], "a": []}

    with pytest.raises(MalformedMessage, match=r"field 'U' not an integer: '1'"):
        parse_message(msg)


def test_it_rejects_invalid_json_as_a_market_data_error():
    with pytest.raises(MarketDataError, match="invalid JSON"):
        parse_message(b'{"stream":"ethusdt@trade","data":{')
    with pytest.raises(MalformedMessage, match="expected a JSON object, got list"):
        parse_message("[1, 2]")


def test_it_requires_the_symbol_of_a_snapshot(recorded_line):
    with pytest.raises(ValueError, match="symbol is required"):
        parse_message(recorded_line(SPOT_ETH, _snapshot))


def test_partial_book_depth_streams_are_not_diffs():
    partial = {"stream": "btcusdt@depth20@100ms",
               "data": {"lastUpdateId": 1, "bids": [], "asks": []}}

    assert parse_message(partial) is None
