"""LiveVenue against the real replay venue on loopback: the live code path, as against Binance."""
from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable

import orjson
import pytest

from apps.market.venues.binance_ws import StreamConfig
from apps.market.venues.ccxt_rest import Backoff
from apps.market.venues.live import VENUE_KEY, LiveVenue, VenueEndpoints
from ml.market.candles import second_candles
from ml.market.events import OrderBookDelta, OrderBookSnapshot, StreamGap
from ml.market.orderbook import OrderBook
from ml.market.session import InstrumentSpec, MarketSession, SecondResult
from ml.market.sync import BookSynchronizer
from tests.apps.market.venues.threaded import WAIT, ThreadedReplay

SYMBOLS = ["ETHUSDT", "BTCUSDT"]
SPECS = [InstrumentSpec("ETHUSDT", 1.0), InstrumentSpec("BTCUSDT", 10.0)]
FAST = StreamConfig(backoff=Backoff(0.05, 0.5), idle_timeout_s=5.0, stable_after_s=0.5)


@pytest.fixture
def replay():
    venue = ThreadedReplay(speed=20)
    try:
        yield venue
    finally:
        venue.stop()


def live(endpoints: VenueEndpoints, config: StreamConfig = FAST, seed: int = 7) -> LiveVenue:
    return LiveVenue(venue="binance", symbols=SYMBOLS, endpoints=endpoints, config=config, rng=random.Random(seed))


def run_session(venue: LiveVenue, until: Callable[[list[SecondResult]], bool],
                hook: Callable[[int, SecondResult], None] | None = None) -> tuple[MarketSession, list[SecondResult]]:
    """Seconds of a MarketSession on ``venue`` until ``until(results so far)``; the venue is closed after WAIT s."""
    session = MarketSession(_GapRecorder(venue), SPECS, close_delay_ms=venue.close_delay_ms)
    watchdog = threading.Timer(WAIT, venue.close)
    watchdog.start()
    results: list[SecondResult] = []
    try:
        for k, result in enumerate(session.seconds()):
            results.append(result)
            if hook is not None:
                hook(k, result)
            if until(results):
                break
        else:
            pytest.fail(f"the stream ended (watchdog) after {len(results)} s; status {venue.status}")
    finally:
        watchdog.cancel()
        venue.close()
    return session, results


class _GapRecorder:
    """``venue`` as the session sees it, keeping the :class:`StreamGap` markers of its stream."""

    def __init__(self, venue: LiveVenue) -> None:
        self._venue = venue
        self.gaps: list[StreamGap] = []

    def __getattr__(self, name: str):
        return getattr(self._venue, name)

    def events(self):
        for event in self._venue.events():
            if type(event) is StreamGap:
                self.gaps.append(event)
            yield event


def venue_gaps(session: MarketSession) -> list[StreamGap]:
    """The :class:`StreamGap` markers of the venue's stream, as the session received them."""
    return session.venue.gaps


def assert_candles_are_the_recorded_ones(replay: ThreadedReplay, results: list[SecondResult]) -> int:
    """Every candle the session emitted equals the one built from the recorded trades; returns how many."""
    n = 0
    for symbol in SYMBOLS:
        expected = second_candles(replay.server.recorded_trades(symbol), symbol)
        for result in results:
            candle = result.candles.get(symbol)
            if candle is None:
                continue
            want = expected[result.ts]
            assert (candle.open, candle.high, candle.low, candle.close, candle.trade_count) == \
                (want.open, want.high, want.low, want.close, want.trade_count), (symbol, result.ts)
            assert candle.volume == pytest.approx(want.volume, rel=1e-9, abs=1e-12)
            n += 1
    return n


def test_it_streams_candles_equal_to_the_recorded_trades_after_a_first_connect_gap(replay):
    venue = live(replay.endpoints)
    session, results = run_session(venue, lambda rs: len(rs) >= 10)
    gaps = _gaps(results, "connect")
    assert set(gaps) == set(SYMBOLS)
    for symbol, gap in gaps.items():  # the partial first second (and any without a trade after it)
        assert gap.from_ms == results[0].ts and gap.to_ms == next(r.ts for r in results if symbol in r.candles)
    assert assert_candles_are_the_recorded_ones(replay, results) >= 16
    assert all(len(r.frames) == 2 for r in results[1:])
    assert venue.status["state"] == "stopped" and venue.status["reconnects"] == 0
    assert venue.counts["ETHUSDT"]["snapshots"] == 1 and session.stats["ETHUSDT"]["gaps"] == 0


def _gaps(results: list[SecondResult], cause: str) -> dict:
    """Per symbol, the first hole of ``cause`` reported so far."""
    out: dict = {}
    for result in results:
        for symbol, gap in result.gaps.items():
            if gap.cause == cause:
                out.setdefault(symbol, gap)
    return out


def _gap_cause(results: list[SecondResult]) -> str | None:
    """The cause once every symbol reported a hole of it (else None)."""
    for cause in ("disconnect", "server_shutdown", "rotation"):
        if len(_gaps(results, cause)) == len(SYMBOLS):
            return cause
    return None


def _fault_at(second: int, fault: Callable[[], object]) -> Callable[[int, SecondResult], None]:
    def hook(k: int, _result: SecondResult) -> None:
        if k == second:
            fault()
    return hook


def test_it_reconnects_after_a_dropped_connection_and_marks_the_hole(replay):
    venue = live(replay.endpoints)
    hook = _fault_at(4, lambda: replay.call(replay.server.drop_connection))
    session, results = run_session(venue, lambda rs: _gap_cause(rs) == "disconnect",
                                   hook)
    for symbol, gap in _gaps(results, "disconnect").items():
        reported = next(r for r in results if r.gaps.get(symbol) == gap)
        assert gap.from_ms < gap.to_ms == reported.ts
        hole = [r for r in results if gap.from_ms <= r.ts < gap.to_ms]
        assert hole and all(symbol not in r.candles for r in hole)  # nothing built from the previous close
        # No frame of a second that ends inside the stream gap (its book may be stale until the next
        # diff). The candle hole can run on past it (seconds without a trade after the reconnect):
        # frames of those seconds are taken from the resynced book and are expected.
        lost = [g for g in venue_gaps(session) if g.symbol == symbol and g.cause == "disconnect"]
        assert len(lost) == 1
        stale_until = lost[0].to_ms - lost[0].to_ms % 1000
        assert all(symbol not in r.frames for r in hole if r.ts < stale_until)
    assert assert_candles_are_the_recorded_ones(replay, results) > 0
    assert venue.status["reconnects"] == 1 and venue.counts["ETHUSDT"]["stream_gaps"] == 2
    assert replay.server.faults["connections_dropped"] == 1
    assert len(venue.stream.waits) == 1 and 0 <= venue.stream.waits[0] <= FAST.backoff.base_s  # stable: reset
    assert session.stats["ETHUSDT"]["stream_gaps"] == 2


def test_a_server_shutdown_1001_is_a_reconnect(replay):
    venue = live(replay.endpoints)
    hook = _fault_at(3, lambda: replay.call(replay.server.shutdown_message()))
    _, results = run_session(venue, lambda rs: _gap_cause(rs) == "server_shutdown",
                             hook)
    assert venue.stream.close_codes[-1] == 1001
    assert venue.status["reconnects"] == 1 and "1001" in venue.status["error"]
    assert assert_candles_are_the_recorded_ones(replay, results) > 0


def test_the_connection_is_rotated_at_its_max_age_without_backoff(replay):
    config = StreamConfig(backoff=Backoff(0.05, 0.5), max_age_s=1.0, idle_timeout_s=5.0)
    venue = live(replay.endpoints, config)
    started = time.monotonic()
    _, results = run_session(venue, lambda rs: _gap_cause(rs) == "rotation")
    assert time.monotonic() - started >= 1.0
    assert venue.status["reconnects"] >= 1 and venue.stream.waits == []  # a rotation reconnects at once
    assert venue.status["errors"] == 0
    assert assert_candles_are_the_recorded_ones(replay, results) > 0


def test_reconnect_waits_follow_full_jitter_backoff_with_a_seeded_rng():
    with socket.socket() as sock:  # a port nobody listens on: every connect is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base, cap = 0.02, 0.2
    venue = live(VenueEndpoints(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"),
                 StreamConfig(backoff=Backoff(base, cap), idle_timeout_s=5.0), seed=42)
    started = time.monotonic()
    try:
        deadline = started + WAIT
        while len(venue.stream.waits) < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        waits = venue.stream.waits[:8]
    finally:
        venue.close()
    rng = random.Random(42)
    assert waits == [rng.uniform(0, min(cap, base * 2 ** k)) for k in range(8)]
    assert all(0 <= w <= min(cap, base * 2 ** k) for k, w in enumerate(waits))
    assert elapsed >= sum(waits[:7])  # really slept
    assert venue.status["state"] == "stopped" and venue.status["errors"] >= 8
    assert "Cannot connect" in venue.status["error"] or "Connect" in venue.status["error"]


def test_malformed_truncated_and_unknown_symbol_frames_are_counted_and_skipped(replay):
    venue = live(replay.endpoints)
    trade = {"e": "trade", "E": 1723161300000, "s": "DOGEUSDT", "t": 1, "p": "0.1", "q": "1", "T": 1723161300000,
             "m": True}
    frames = [
        "not json at all",
        '{"stream":"ethusdt@trade","data":{"e":"trade","s":"ETHUSDT"}}',  # fields missing
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":17231613',  # truncated
        orjson.dumps({"stream": "dogeusdt@trade", "data": trade}).decode(),
        '{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"s":"ETHUSDT","t":1,"p":"-5","q":"1","T":1,"m":true}}',
    ]

    def inject(k: int, _r: SecondResult) -> None:
        if k == 2:
            for text in frames:
                assert replay.call(lambda t=text: replay.server.inject_frame(t)) == 1

    _, results = run_session(venue, lambda rs: len(rs) > 6, inject)
    assert venue.counts[VENUE_KEY]["malformed"] == 1
    assert venue.counts["ETHUSDT"]["malformed"] == 1 and venue.counts["BTCUSDT"]["malformed"] == 1
    assert venue.counts[VENUE_KEY]["unknown_symbol"] == 1
    assert venue.counts["ETHUSDT"]["rejected"] == 1
    assert venue.status["reconnects"] == 0  # bad input never costs the connection
    assert assert_candles_are_the_recorded_ones(replay, results) > 0


def test_the_book_equals_the_venue_truth_after_dropped_duplicated_and_reordered_diffs(replay):
    venue = live(replay.endpoints)
    sync = BookSynchronizer("ETHUSDT", "spot", venue.snapshot, book=OrderBook())
    watchdog = threading.Timer(WAIT, venue.close)
    watchdog.start()
    server = replay.server
    events = venue.events()

    def step_until(done: Callable[[], bool]) -> None:
        for event in events:
            if event.symbol == "ETHUSDT" and type(event) is OrderBookDelta:
                sync.apply_delta(event)
            elif event.symbol == "ETHUSDT" and type(event) is OrderBookSnapshot:
                sync.apply_snapshot(event)
            if done():
                return
        pytest.fail(f"stream ended: {sync.stats} {venue.status}")

    try:
        step_until(lambda: sync.stats.deltas_applied > 5)
        replay.call(lambda: server.drop_next("ETHUSDT"))
        step_until(lambda: sync.stats.gaps == 1 and sync.synced)
        replay.call(lambda: server.duplicate_next("ETHUSDT"))
        step_until(lambda: venue.counts["ETHUSDT"]["duplicates"] == 1)
        replay.call(lambda: server.reorder_next("ETHUSDT"))
        step_until(lambda: sync.stats.gaps == 2 and sync.synced and venue.counts["ETHUSDT"]["out_of_order"] == 1)
        replay.call(server.pause)
        truth_id = replay.call(lambda: server.truth_update_id("ETHUSDT"))
        if sync.last_update_id != truth_id:
            step_until(lambda: sync.synced and sync.last_update_id == truth_id)
        truth = replay.call(lambda: server.truth_book("ETHUSDT").copy())
    finally:
        watchdog.cancel()
        venue.close()
    assert sync.book.levels("bid", 100) == truth.levels("bid", 100)
    assert sync.book.levels("ask", 100) == truth.levels("ask", 100)
    assert server.faults["diffs_dropped"] == 1 and server.faults["diffs_reordered"] == 1
    assert sync.stats.gaps == 2 and sync.stats.resyncs == 2  # the drop and the reorder, each resynced
    assert venue.counts["ETHUSDT"]["duplicates"] == 1 and venue.counts["ETHUSDT"]["out_of_order"] == 1
