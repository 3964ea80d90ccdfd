"""The Engine, unchanged, on a LiveVenue connected to the replay venue (real Postgres)."""
from __future__ import annotations

import random
import threading

import pytest

from apps.market.models import DataGap, Instrument
from apps.market.selectors import candle_range
from apps.market.venues.binance_ws import StreamConfig
from apps.market.venues.ccxt_rest import Backoff
from apps.market.venues.live import LiveVenue
from apps.pipeline.engine import Engine
from ml.market.candles import second_candles
from tests.apps.market.venues.threaded import ThreadedReplay

pytestmark = pytest.mark.django_db
SYMBOLS = ["ETHUSDT", "BTCUSDT"]


@pytest.fixture
def replay():
    venue = ThreadedReplay(speed=10)
    try:
        yield venue
    finally:
        venue.stop()


def test_the_engine_runs_on_the_live_venue_and_backfills_every_hole(replay):
    venue = LiveVenue(venue="binance", symbols=SYMBOLS, endpoints=replay.endpoints, rng=random.Random(1),
                      config=StreamConfig(backoff=Backoff(0.05, 0.5), idle_timeout_s=5.0, stable_after_s=0.5))
    engine = Engine(venue=venue, accounts=[])
    watchdog = threading.Timer(60, venue.close)
    watchdog.start()
    try:
        for k, update in enumerate(engine.run()):
            if k == 6:
                replay.call(replay.server.drop_connection)
            done = all(engine.counters[s].stream_gaps >= 2 for s in SYMBOLS)  # connect + disconnect, backfilled
            if k > 12 and done and all(update["instruments"][s]["candle"] for s in SYMBOLS):
                break
    finally:
        watchdog.cancel()
        venue.close()
    engine.flush()
    assert venue.status["reconnects"] == 1 and replay.server.faults["connections_dropped"] == 1
    for symbol in SYMBOLS:
        instrument = engine.instruments[symbol]
        stored = candle_range(instrument=instrument, timeframe="1s", start_ms=engine.first_ts, end_ms=engine.last_ts + 1000)
        # every second of the session is stored: streamed, or fetched again for the holes; none interpolated
        assert [c.open_time for c in stored] == list(range(engine.first_ts, engine.last_ts + 1000, 1000))
        expected = second_candles(replay.server.recorded_trades(symbol), symbol)
        for candle in stored:
            want = expected[candle.open_time]
            assert (candle.open, candle.high, candle.low, candle.close, candle.trade_count) == \
                (want.open, want.high, want.low, want.close, want.trade_count), (symbol, candle.open_time)
            assert candle.volume == pytest.approx(want.volume, abs=1e-8)
        gaps = {g.cause: g for g in DataGap.objects.filter(instrument=instrument)}
        assert gaps[DataGap.Cause.DISCONNECT].backfilled and gaps[DataGap.Cause.MISSING_CANDLES].backfilled
        assert engine.counters[symbol].candles_backfilled >= 2
    assert engine.counters["ETHUSDT"].cob_frames > 0
    assert Instrument.objects.filter(symbol="ETHUSDT", venue="binance").exists()
