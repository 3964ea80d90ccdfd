"""MarketSession: the per-second clock, products and stats over the recorded spot run."""
from __future__ import annotations

import pytest

from ml.market.events import OrderBookDelta, OrderBookSnapshot
from ml.market.replay import ReplayVenue
from ml.market.session import InstrumentSpec, MarketSession
from ml.market.sync import BookSynchronizer
from tests.ml.market.recorded import (
    FIRST_SECOND,
    HAND_CHECKED_SECOND,
    LAST_SECOND,
    SPOT_SPECS,
)


def test_it_emits_every_second_from_the_first_event_to_the_last_complete_one(spot_run):
    assert spot_run.seconds == list(range(FIRST_SECOND, LAST_SECOND + 1000, 1000))
    assert len(spot_run.seconds) == 650


def test_every_second_has_a_frame_and_a_candle_per_symbol(spot_run):
    for symbol in ("ETHUSDT", "BTCUSDT"):
        assert [f.ts for f in spot_run.frames[symbol]] == spot_run.seconds
        assert [c.open_time for c in spot_run.candles[symbol]] == spot_run.seconds
        assert all(f.symbol == symbol and f.n_buckets == 20 for f in spot_run.frames[symbol])


def test_its_stats_count_every_recorded_message(spot_run):
    assert spot_run.stats["ETHUSDT"] == {
        "gaps": 0, "resyncs": 0, "deltas_applied": 6468, "deltas_dropped": 2,
        "level_updates": 272752, "snapshots": 1, "rejected": 0, "stale_snapshots": 0, "trades": 14515, "late_trades": 0,
        "malformed": 0,
        "withheld": 0, "frames": 650, "candles": 650}
    assert spot_run.stats["BTCUSDT"]["level_updates"] == 298094
    assert spot_run.stats["BTCUSDT"]["trades"] == 19904


def test_a_second_closes_before_the_first_event_of_the_next_second_is_applied(spot_venue,
                                                                                   spot_run):
    sync = BookSynchronizer("ETHUSDT", "spot")
    for event in spot_venue.events():
        if event.symbol != "ETHUSDT":
            continue
        if event.ts_event is not None and event.ts_event >= HAND_CHECKED_SECOND + 1000:
            break
        if isinstance(event, OrderBookSnapshot):
            sync.apply_snapshot(event)
        elif isinstance(event, OrderBookDelta):
            sync.apply_delta(event)

    assert spot_run.books["ETHUSDT"] == sync.book


def test_a_gap_in_the_stream_is_resynced_without_losing_a_frame(spot_venue):
    venue = spot_venue.with_drops({"ETHUSDT": {3000}})
    session = MarketSession(venue, SPOT_SPECS)

    n_seconds = sum(1 for _ in session.seconds())

    stats = session.stats["ETHUSDT"]
    assert (stats["gaps"], stats["resyncs"], stats["withheld"]) == (1, 1, 1)
    assert stats["frames"] == n_seconds == 650
    assert session.stats["BTCUSDT"]["gaps"] == 0
    assert session.synchronizer("ETHUSDT").book == venue.truth_book("ETHUSDT")


def test_a_symbol_without_a_snapshot_gets_candles_but_no_frames(data_dir):
    venue = ReplayVenue({"BTCUSDT": [data_dir / "orderbook/binance_spot/btcusdt_20230405.dat.gz"]})
    session = MarketSession(venue, [InstrumentSpec("BTCUSDT", 10.0)])

    results = list(session.seconds())

    assert len(results) == 415
    assert all(not r.frames and not r.books for r in results)
    assert all("BTCUSDT" in r.candles for r in results[1:])
    assert session.stats["BTCUSDT"]["trades"] == 3144


def test_symbols_without_a_spec_are_ignored(spot_venue):
    session = MarketSession(spot_venue, [InstrumentSpec("ETHUSDT", 1.0)])

    first = next(session.seconds())

    assert set(first.frames) == set(first.candles) == {"ETHUSDT"}
    assert list(session.stats) == ["ETHUSDT"]


def test_a_symbol_cannot_be_specified_twice(spot_venue):
    with pytest.raises(ValueError, match="ETHUSDT given twice"):
        MarketSession(spot_venue, [InstrumentSpec("ETHUSDT", 1.0), InstrumentSpec("ethusdt", 2.0)])
