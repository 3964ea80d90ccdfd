"""Stream gaps (a live venue's disconnects): no candle is synthesized for a missed window; the hole is
reported once candles resume so the caller backfills it."""
from __future__ import annotations

import pytest

from ml.market.candles import SecondCandleBuilder, second_candles
from ml.market.events import StreamGap, Trade
from ml.market.replay import ReplayVenue
from ml.market.session import MarketSession
from tests.ml.market.recorded import FIRST_SECOND, SPOT_SPECS

CUT_FROM, CUT_TO = FIRST_SECOND + 100_400, FIRST_SECOND + 104_700  # 4.3 s of the session lost


class Disconnected:
    """The recorded session as a live client sees it with one disconnect: no event with exchange time
    in ``(cut_from, cut_to)`` arrives, and each symbol gets a StreamGap before the first event after."""

    def __init__(self, venue: ReplayVenue, cut_from: int, cut_to: int) -> None:
        self.venue, self.cut_from, self.cut_to = venue, cut_from, cut_to
        self.counts = venue.counts

    def snapshot(self, symbol: str):
        return self.venue.snapshot(symbol)

    def events(self):
        last, sent = None, False
        for event in self.venue.events():
            ts = event.ts_event
            if ts is not None and self.cut_from < ts < self.cut_to:
                continue
            if ts is not None and ts >= self.cut_to and not sent:
                sent = True
                for symbol in self.venue.symbols:
                    yield StreamGap(symbol, min(last, ts), ts, "disconnect")
            if ts is not None:
                last = ts
            yield event


def _trade(ts: int, price: float, trade_id: int) -> Trade:
    return Trade("ETHUSDT", ts, trade_id, price, 1.0, False)


def test_a_marked_gap_gets_no_candle_and_no_flat_fill_from_the_previous_close():
    builder = SecondCandleBuilder("ETHUSDT")
    builder.on_trade(_trade(1_000, 10.0, 1))
    assert builder.close(1_000).close == 10.0
    builder.on_trade(_trade(2_100, 11.0, 2))
    builder.mark_gap(2_100, 4_500)  # lost trades between 2.1 s and 4.5 s
    builder.on_trade(_trade(4_700, 12.0, 3))  # a trade of an incomplete second: dropped
    assert [builder.close(t) for t in (2_000, 3_000, 4_000, 5_000)] == [None, None, None, None]  # 5 s: no trade yet
    assert builder.take_hole() is None
    assert builder.gap_trades == 2
    builder.on_trade(_trade(6_200, 13.0, 4))
    candle = builder.close(6_000)
    assert (candle.open, candle.close, candle.trade_count) == (13.0, 13.0, 1)
    assert builder.take_hole() == (2_000, 6_000, "disconnect")
    assert builder.take_hole() is None  # reported once
    assert builder.close(7_000).close == 13.0 and builder.close(7_000 + 1000).volume == 0.0  # flat fill again


def test_a_gap_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="ends before"):
        SecondCandleBuilder("ETHUSDT").mark_gap(5_000, 4_000)


def test_the_session_reports_the_hole_and_its_other_candles_equal_the_recorded_trades(spot_venue, spot_run):
    replay = spot_venue.with_drops({})
    venue = Disconnected(replay, CUT_FROM, CUT_TO)
    session = MarketSession(venue, SPOT_SPECS)
    results = list(session.seconds())
    assert [r.ts for r in results] == spot_run.seconds  # the clock still closes every second
    for spec in SPOT_SPECS:
        symbol = spec.symbol
        reported = [(r.ts, r.gaps[symbol]) for r in results if symbol in r.gaps]
        assert len(reported) == 1
        at, gap = reported[0]
        assert gap.from_ms == CUT_FROM - CUT_FROM % 1000 and gap.to_ms == at >= CUT_TO - CUT_TO % 1000 + 1000
        hole = [r for r in results if gap.from_ms <= r.ts < gap.to_ms]
        assert hole and all(symbol not in r.candles for r in hole)
        assert all(symbol not in r.frames for r in hole if r.ts < CUT_TO - CUT_TO % 1000)
        recorded = {c.open_time: c for c in spot_run.candles[symbol]}
        emitted = [r.candles[symbol] for r in results if symbol in r.candles]
        assert len(emitted) == len(recorded) - len(hole)
        assert all(c == recorded[c.open_time] for c in emitted)
        stats = session.stats[symbol]
        assert stats["stream_gaps"] == 1 and stats["gaps"] == 1 and stats["resyncs"] == 1  # the lost diffs
        assert session.synchronizer(symbol).book == replay.truth_book(symbol)


def test_the_reference_candles_of_the_recorded_trades_are_the_session_candles(spot_venue, spot_run):
    trades = [e for e in spot_venue.with_drops({}).events() if type(e) is Trade and e.symbol == "ETHUSDT"]
    reference = second_candles(trades, "ETHUSDT")
    session = {c.open_time: c for c in spot_run.candles["ETHUSDT"]}
    assert all(reference[t] == c for t, c in session.items() if t in reference)
    assert len(set(reference) & set(session)) >= 640


class ArrivalOrder:
    """The recorded session in receive order (as a live socket delivers it), both symbols merged."""

    def __init__(self, recordings) -> None:
        self.recordings = recordings
        self.counts: dict = {}

    def snapshot(self, symbol: str):
        raise AssertionError("no resync expected")

    def events(self):
        import heapq

        from ml.market.recording import read_recording

        streams = [read_recording(paths, symbol) for symbol, paths in self.recordings.items()]
        for _, event in heapq.merge(*streams, key=lambda item: item[0]):
            yield event


def test_a_close_delay_keeps_trades_that_arrive_after_the_next_seconds_diffs(spot_recordings, spot_run):
    late = MarketSession(ArrivalOrder(spot_recordings), SPOT_SPECS)
    list(late.seconds())
    assert late.stats["BTCUSDT"]["late_trades"] > 100  # what closing at the first later event loses live
    session = MarketSession(ArrivalOrder(spot_recordings), SPOT_SPECS, close_delay_ms=500)
    results = list(session.seconds())
    for spec in SPOT_SPECS:
        recorded = {c.open_time: c for c in spot_run.candles[spec.symbol]}
        candles = [r.candles[spec.symbol] for r in results if spec.symbol in r.candles]
        assert session.stats[spec.symbol]["late_trades"] == 0
        assert len(candles) >= len(recorded) - 1 and all(c == recorded[c.open_time] for c in candles)
    assert all(r.frames for r in results)


def test_a_negative_close_delay_is_refused(spot_venue):
    with pytest.raises(ValueError, match="close_delay_ms"):
        MarketSession(spot_venue, SPOT_SPECS, close_delay_ms=-1)
