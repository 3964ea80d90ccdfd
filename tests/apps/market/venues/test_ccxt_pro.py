"""CcxtProVenue (Bybit spot on ccxt.pro) against a loopback stand-in serving the recorded Bybit v5 messages."""
from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable

import orjson
import pytest

from apps.market.venues import open_venue
from apps.market.venues.binance_ws import StreamConfig
from apps.market.venues.ccxt_pro import CcxtProVenue, CcxtRest, _configure, market_of
from apps.market.venues.ccxt_rest import Backoff, VenuePermanentError
from apps.market.venues.live import VENUE_KEY, LiveVenue, VenueEndpoints
from ml.market.events import OrderBookSnapshot, StreamGap, Trade
from tests.apps.market.venues.bybit_venue import ThreadedBybit, recorded_books, recorded_trades

SYMBOLS = ["ETHUSDT", "BTCUSDT"]
FAST = StreamConfig(backoff=Backoff(0.05, 0.5), idle_timeout_s=5.0, stable_after_s=0.5)
WAIT = 30.0
COMPARED_LEVELS = 100  # a snapshot sent on (re)subscribe holds 200 levels; deeper levels may differ after it


@pytest.fixture
def bybit():
    venue = ThreadedBybit(speed=6.0)
    try:
        yield venue
    finally:
        venue.stop()


def venue_on(endpoints: VenueEndpoints, seed: int = 7, **kwargs) -> CcxtProVenue:
    return CcxtProVenue(venue="bybit", symbols=SYMBOLS, endpoints=endpoints, config=kwargs.pop("config", FAST),
                        rng=random.Random(seed), **kwargs)


def collect(venue: CcxtProVenue, until: Callable[[list], bool], hook: Callable[[list], None] | None = None,
            drained: Callable[[], bool] | None = None) -> list:
    """Events of ``venue`` until ``until(events so far)``, or until ``drained()`` (a truthy count of
    what arrived, or falsy) is the same for 0.3 s, checked by a thread: the last event may be taken
    before the condition turns true, and no event comes after it to check it again. The venue is
    closed after WAIT s."""
    watchdog = threading.Timer(WAIT, venue.close)
    watchdog.start()
    done = threading.Event()
    if drained is not None:
        def watch() -> None:  # drained() returns a count of what arrived: it must hold still too
            while not watchdog.finished.is_set():
                seen = drained()
                if seen:
                    time.sleep(0.3)
                    if drained() == seen:
                        done.set()
                        venue.close()
                        return
                time.sleep(0.02)
        threading.Thread(target=watch, daemon=True).start()
    events: list = []
    try:
        for event in venue.events():
            events.append(event)
            if hook is not None:
                hook(events)
            if until(events):
                break
        else:
            if not done.is_set():
                pytest.fail(f"the stream ended (watchdog) after {len(events)} events; status {venue.status}")
    finally:
        watchdog.cancel()
        venue.close()
    return events


def books(events: list, symbol: str) -> list[OrderBookSnapshot]:
    return [e for e in events if type(e) is OrderBookSnapshot and e.symbol == symbol]


def assert_books_are_the_recorded_ones(events: list) -> int:
    """Every book handed over equals the book rebuilt from the recorded messages at its ``u``; returns how many."""
    n = 0
    for symbol in SYMBOLS:
        expected = recorded_books(symbol)
        ids = [b.last_update_id for b in books(events, symbol)]
        assert ids == sorted(set(ids)), symbol  # strictly increasing
        for book in books(events, symbol):
            bids, asks = expected[book.last_update_id]
            assert list(book.bids[:COMPARED_LEVELS]) == bids[:COMPARED_LEVELS], (symbol, book.last_update_id)
            assert list(book.asks[:COMPARED_LEVELS]) == asks[:COMPARED_LEVELS], (symbol, book.last_update_id)
            n += 1
    return n


def test_books_and_trades_equal_the_recorded_ones_after_a_first_connect_gap(bybit):
    venue = venue_on(bybit.endpoints)
    events = collect(venue, lambda _: False, drained=lambda: bybit.server.counts["finished"] and venue.pending == 0
                     and venue.status["messages"])
    assert len(events) > 100
    gaps = [e for e in events if type(e) is StreamGap]
    assert [g.symbol for g in gaps] == SYMBOLS and all(g.cause == "connect" for g in gaps)
    assert events.index(gaps[0]) == 0  # before the first book: the second we joined in is incomplete
    assert assert_books_are_the_recorded_ones(events) > 300
    assert all(len(b.bids) == len(b.asks) == 200 for b in books(events, "BTCUSDT"))
    for symbol in SYMBOLS:
        got = [e for e in events if type(e) is Trade and e.symbol == symbol]
        recorded = recorded_trades(symbol)
        assert got and got == recorded[len(recorded) - len(got):]  # every trade produced after we subscribed
        assert venue.counts[symbol]["duplicates"] == venue.counts[symbol]["malformed"] == 0
    assert venue.status["reconnects"] == 0 and venue.status["errors"] == 0 and venue.status["state"] == "stopped"
    assert venue.sync_rule == "snapshot" and venue.counts["ETHUSDT"]["snapshots"] == len(books(events, "ETHUSDT"))


def _after(n_books: int, fault: Callable[[], object]) -> Callable[[list], None]:
    done = []

    def hook(events: list) -> None:
        if not done and len(books(events, "ETHUSDT")) == n_books:
            done.append(fault())
    return hook


def _reconnected(events: list, cause: str) -> bool:
    gaps = [e for e in events if type(e) is StreamGap and e.cause == cause]
    return len(gaps) == 2 and len(books(events[events.index(gaps[-1]):], "ETHUSDT")) >= 5


def test_it_reconnects_after_a_dropped_connection_and_marks_the_gap(bybit):
    venue = venue_on(bybit.endpoints)
    events = collect(venue, lambda es: _reconnected(es, "disconnect"),
                     _after(20, lambda: bybit.call(bybit.server.drop_connection)))
    gaps = {e.symbol: e for e in events if type(e) is StreamGap and e.cause == "disconnect"}
    assert set(gaps) == set(SYMBOLS)
    before = [e for e in events[: events.index(gaps["ETHUSDT"])] if type(e) is not StreamGap]
    assert all(g.from_ms == max(e.ts_event for e in before) < g.to_ms for g in gaps.values())
    assert assert_books_are_the_recorded_ones(events) > 25  # the new connection's snapshot included
    assert venue.status["reconnects"] == 1 and "closed" in venue.status["error"].lower()
    assert bybit.server.counts["connections"] == 2 and bybit.server.counts["connections_dropped"] == 1
    assert len(venue.waits) == 1 and 0 <= venue.waits[0] <= FAST.backoff.base_s  # the lost one was stable: reset
    assert venue.counts["ETHUSDT"]["stream_gaps"] == 2


def test_a_book_sequence_gap_recycles_the_connection_for_a_new_snapshot(bybit):
    venue = venue_on(bybit.endpoints)

    def skip_ahead():
        u = bybit.server.book_u["ETHUSDT"][0]
        frame = {"topic": "orderbook.200.ETHUSDT", "ts": bybit.server.book_u["ETHUSDT"][2], "type": "delta",
                 "data": {"s": "ETHUSDT", "b": [], "a": [], "u": u + 1000, "seq": 1}}
        return bybit.call(bybit.server.inject_frame(orjson.dumps(frame).decode()))

    events = collect(venue, lambda es: _reconnected(es, "sequence_gap"), _after(10, skip_ahead))
    assert venue.counts["ETHUSDT"]["sequence_gaps"] == 1 and venue.status["reconnects"] == 1
    assert assert_books_are_the_recorded_ones(events) > 15  # the skipped-ahead u was never handed over


def test_malformed_and_unknown_symbol_frames_are_counted_and_skipped(bybit):
    venue = venue_on(bybit.endpoints)
    trade = {"i": "1", "T": 1786310821917, "p": "0.1", "v": "1", "S": "Buy", "s": "DOGEUSDT"}
    frames = [
        "not json at all",
        '{"topic":"orderbook.200.BTCUSDT","ts":1786310821917,"type":"delta","data":{"s":"BTCUSDT","b":[',  # truncated
        '{"topic":"publicTrade.ETHUSDT","ts":1,"type":"snapshot","data":[{"s":"ETHUSDT"}]}',  # fields missing
        orjson.dumps({"topic": "publicTrade.DOGEUSDT", "ts": 1, "type": "snapshot", "data": [trade]}).decode(),
        orjson.dumps({"topic": "publicTrade.ETHUSDT", "ts": 1, "type": "snapshot",
                      "data": [{**trade, "s": "ETHUSDT", "p": "-5"}]}).decode(),
    ]

    def inject():
        return [bybit.call(bybit.server.inject_frame(text)) for text in frames]

    events = collect(venue, lambda es: len(books(es, "ETHUSDT")) >= 30, _after(10, inject))
    assert venue.counts[VENUE_KEY]["malformed"] == 2  # not JSON, truncated
    assert venue.counts["ETHUSDT"]["malformed"] == 2  # fields missing, negative price
    assert venue.counts[VENUE_KEY]["unknown_symbol"] == 1
    assert venue.status["reconnects"] == 0  # bad input never costs the connection
    assert not any(type(e) is Trade and e.price <= 0 for e in events)
    assert assert_books_are_the_recorded_ones(events) >= 30


def test_it_answers_bybit_pings_and_keeps_the_connection(bybit):
    venue = venue_on(bybit.endpoints, keepalive_ms=500)  # ccxt drops a connection after 2 missed pongs
    started = time.monotonic()
    collect(venue, lambda es: time.monotonic() - started > 3.0)
    assert bybit.server.counts["pings"] >= 4 and venue.status["reconnects"] == 0


def test_reconnect_waits_follow_full_jitter_backoff_with_a_seeded_rng():
    with socket.socket() as sock:  # a port nobody listens on: loading the markets fails every time
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base, cap = 0.02, 0.2
    venue = venue_on(VenueEndpoints(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"), seed=42,
                     config=StreamConfig(backoff=Backoff(base, cap), idle_timeout_s=5.0))
    try:
        deadline = time.monotonic() + WAIT
        while len(venue.waits) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        waits = venue.waits[:6]
    finally:
        venue.close()
    rng = random.Random(42)
    assert waits == [rng.uniform(0, min(cap, base * 2 ** k)) for k in range(6)]
    assert venue.status["state"] == "stopped" and venue.status["errors"] >= 6
    assert "markets" in venue.status["error"]


def test_an_unknown_symbol_fails_the_stream_with_a_clear_error(bybit):
    venue = CcxtProVenue(venue="bybit", symbols=["ETHUSDT", "NOPEUSDT"], endpoints=bybit.endpoints, config=FAST)
    try:
        with pytest.raises(VenuePermanentError, match="unknown symbol 'NOPEUSDT'"):
            next(venue.events())
    finally:
        venue.close()
    assert venue.status["state"] == "failed"


def test_rest_candles_and_depth_through_ccxt_with_retries(bybit):
    rest = CcxtRest(venue="bybit", rest_url=bybit.server.url, backoff=Backoff(0.01, 0.05), rng=random.Random(3))
    bybit.server.http_errors.append(("/v5/market/kline", 503))
    candles = rest.candles("ETHUSDT", "1m", start_ms=1786310760000, end_ms=1786310820000)
    assert [c.open_time for c in candles] == [1786310760000, 1786310820000]
    assert candles[0].quote_volume > 0 and candles[0].low <= candles[0].close <= candles[0].high
    assert rest.counts["http_5xx"] == 1 and rest.counts["retries"] == 1
    with pytest.raises(VenuePermanentError, match="1s candles are not served"):
        rest.candles("ETHUSDT", "1s")
    with pytest.raises(VenuePermanentError, match="unknown symbol"):
        rest.depth("NOPEUSDT")
    deadline = time.monotonic() + WAIT
    while "ETHUSDT" not in bybit.server.book_u and time.monotonic() < deadline:
        time.sleep(0.05)
    snap = rest.depth("ETHUSDT", 1000)  # capped at Bybit spot's 200
    assert len(snap.bids) == len(snap.asks) == 200 and snap.bids[0][0] < snap.asks[0][0]
    assert snap.last_update_id in recorded_books("ETHUSDT")


def test_the_factory_picks_the_client_per_venue():
    endpoints = VenueEndpoints("http://127.0.0.1:1", "ws://127.0.0.1:1")
    assert isinstance(open_venue(venue="binance", symbols=["ETHUSDT"], endpoints=endpoints, start=False), LiveVenue)
    bybit = open_venue(venue="bybit", symbols=["ethusdt"], endpoints=endpoints, start=False)
    assert isinstance(bybit, CcxtProVenue) and bybit.symbols == ["ETHUSDT"] and bybit.sync_rule == "snapshot"
    with pytest.raises(ValueError, match="'kraken'"):
        open_venue(venue="kraken", symbols=["ETHUSDT"])


def test_mexc_maps_symbols_and_endpoints_and_retries_an_unreachable_venue_with_backoff():
    import ccxt.pro

    endpoints = VenueEndpoints("http://127.0.0.1:1", "ws://127.0.0.1:1")
    exchange = _configure(ccxt.pro.mexc(), "mexc", endpoints)
    assert exchange.urls["api"]["ws"]["spot"] == "ws://127.0.0.1:1/ws"
    assert exchange.urls["api"]["spot"]["public"] == "http://127.0.0.1:1"
    markets_by_id = {"ETHUSDT": [{"symbol": "ETH/USDT:USDT", "spot": False}, {"symbol": "ETH/USDT", "spot": True}]}
    assert market_of(markets_by_id, "mexc", "ethusdt") == "ETH/USDT"
    with pytest.raises(VenuePermanentError, match="unknown symbol 'BTCUSDT'"):
        market_of(markets_by_id, "mexc", "BTCUSDT")
    # protobuf (requirements.txt) decodes MEXC's spot streams; with no MEXC here the venue keeps
    # retrying the configured endpoint with backoff, counting and naming each failure.
    venue = CcxtProVenue(venue="mexc", symbols=["ETHUSDT"], endpoints=endpoints, config=FAST)
    try:
        deadline = time.monotonic() + 20
        while venue.status["errors"] < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert venue.status["state"] == "reconnecting" and venue.status["errors"] >= 3
        assert "http://127.0.0.1:1/api/v3/exchangeInfo" in venue.status["error"]
    finally:
        venue.close()


def test_bybit_u_restarting_lower_keeps_the_handed_over_ids_increasing():
    from ml.market.events import OrderBookDelta

    venue = CcxtProVenue(venue="bybit", symbols=["ETHUSDT"], endpoints=VenueEndpoints("http://x", "ws://x"), start=False)
    venue.recycle = lambda cause: venue.counts["_venue"].update([f"recycled_{cause}"])
    level = ((1.0, 1.0),)
    assert venue._book_continues("ETHUSDT", OrderBookSnapshot("ETHUSDT", 100, level, ((2.0, 1.0),)))
    assert venue._book_continues("ETHUSDT", OrderBookDelta("ETHUSDT", 1, 101, 101, None, level, ()))
    assert not venue._book_continues("ETHUSDT", OrderBookDelta("ETHUSDT", 1, 103, 103, None, level, ()))
    assert venue.counts["ETHUSDT"]["sequence_gaps"] == 1 and venue.counts["_venue"]["recycled_sequence_gap"] == 1
    assert not venue._book_continues("ETHUSDT", OrderBookDelta("ETHUSDT", 1, 104, 104, None, level, ()))
    assert venue.counts["ETHUSDT"]["sequence_gaps"] == 1  # deltas wait for the next snapshot, not counted again
    venue._last_id["ETHUSDT"] = 101  # handed over before the venue restarted
    assert venue._book_continues("ETHUSDT", OrderBookSnapshot("ETHUSDT", 1, level, ((2.0, 1.0),)))  # u == 1: reset
    assert venue.counts["ETHUSDT"]["sequence_resets"] == 1 and 1 + venue._u_offset["ETHUSDT"] == 102
    assert venue._book_continues("ETHUSDT", OrderBookDelta("ETHUSDT", 1, 2, 2, None, level, ()))
