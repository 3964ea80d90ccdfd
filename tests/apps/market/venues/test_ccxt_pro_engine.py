"""The Engine, unchanged, on a CcxtProVenue (Bybit spot) connected to the recorded-Bybit stand-in (real Postgres)."""
from __future__ import annotations

import random
import threading
import time
from decimal import Decimal

import pytest

from apps.market.models import Candle, DataGap, Instrument
from apps.market.venues.binance_ws import StreamConfig
from apps.market.venues.ccxt_pro import CcxtProVenue
from apps.market.venues.ccxt_rest import Backoff
from apps.pipeline.engine import Engine
from tests.apps.market.venues.bybit_venue import ThreadedBybit, recorded_trades

pytestmark = pytest.mark.django_db
SYMBOLS = ["ETHUSDT", "BTCUSDT"]


@pytest.fixture
def bybit():
    venue = ThreadedBybit(speed=4.0)
    try:
        yield venue
    finally:
        venue.stop()


@pytest.fixture
def instruments():
    return [Instrument.objects.create(venue=Instrument.Venue.BYBIT, symbol="ETHUSDT", base="ETH", quote="USDT",
                                      tick_size=Decimal("0.01"), bucket_width=Decimal("1"), is_traded=True),
            Instrument.objects.create(venue=Instrument.Venue.BYBIT, symbol="BTCUSDT", base="BTC", quote="USDT",
                                      tick_size=Decimal("0.1"), bucket_width=Decimal("10"))]


def _wait_past_the_first_closed_minute(bybit, timeout_s: float = 60.0) -> None:
    """Let the stand-in's replay pass the end of the first recorded 1m candle of every symbol.

    The start-up backfill asks for the candles closed before the minute of the session's first
    event, and the stand-in streams from where its replay clock stands when the client connects;
    on a busy machine the first event could fall inside the recording's first minute, and then no
    recorded candle is closed yet."""
    frames = bybit.server.recording.frames
    boundary = max(min(c["start"] for _, _, m in frames if m["topic"] == f"kline.1.{symbol}" for c in m["data"])
                   for symbol in SYMBOLS) + 60_000
    deadline = time.monotonic() + timeout_s
    while not any(m.get("ts", 0) >= boundary + 1000 for m in bybit.server.produced[-100:]):
        assert time.monotonic() < deadline, f"the stand-in did not reach {boundary} within {timeout_s} s"
        time.sleep(0.05)


def test_the_engine_runs_on_a_bybit_venue_with_snapshot_books(bybit, instruments):
    _wait_past_the_first_closed_minute(bybit)
    venue = CcxtProVenue(venue="bybit", symbols=SYMBOLS, endpoints=bybit.endpoints, rng=random.Random(1),
                         config=StreamConfig(backoff=Backoff(0.05, 0.5), idle_timeout_s=5.0, stable_after_s=0.5))
    engine = Engine(venue=venue, accounts=[])
    assert engine.session.synchronizer("ETHUSDT").rule == "snapshot"
    watchdog = threading.Timer(60, venue.close)
    watchdog.start()
    try:
        for k, _update in enumerate(engine.run()):
            if k >= 12:
                break
    finally:
        watchdog.cancel()
        venue.close()
    engine.flush()
    for symbol, instrument in zip(SYMBOLS, instruments, strict=True):
        assert engine.counters[symbol].cob_frames >= 11, symbol  # every second after the first
        assert engine.counters[symbol].sequence_gaps == 0 and engine.session.stats[symbol]["rejected"] == 0
        assert engine.counters[symbol].stream_gaps == 1  # the connect gap; Bybit serves no 1 s candles to refill it
        assert DataGap.objects.filter(instrument=instrument, backfilled=False).exists()
        # the start-up backfill stored the recorded closed 1m candle through ccxt fetch_ohlcv
        assert Candle.objects.filter(instrument=instrument, timeframe="1m").exists()
    trades = recorded_trades("ETHUSDT")
    streamed = Candle.objects.filter(instrument=instruments[0], timeframe="1s").order_by("open_time")
    assert streamed.exists()
    for candle in streamed:  # each close is the last recorded trade price before the second's end
        end_ms = int(candle.open_time.timestamp() * 1000) + 1000
        assert float(candle.close) == [t.price for t in trades if t.ts_event < end_ms][-1]
