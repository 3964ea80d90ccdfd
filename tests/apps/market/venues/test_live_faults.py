"""A small fault soak (bench/ingest.py) as a test: every injected gap is detected, no 1 s candle is lost
or duplicated, the books end equal to the venue's truth; candles go through the real Postgres store."""
from __future__ import annotations

import pytest

from apps.market.backfill import candle_backfill
from apps.market.models import DataGap, Instrument
from apps.market.selectors import candle_range
from apps.market.services import candle_upsert_many
from bench.ingest import soak

pytestmark = pytest.mark.django_db


class DbStore:
    """The soak's candle store on the database: ``candle_upsert_many`` and ``candle_backfill``."""

    def __init__(self, rest) -> None:
        self.rest = rest
        self.instruments = {i.symbol: i for i in Instrument.objects.filter(venue=Instrument.Venue.BINANCE)}
        self.backfilled = self.holes = 0

    def upsert(self, symbol: str, candles) -> None:
        candle_upsert_many(instrument=self.instruments[symbol], candles=candles)

    def backfill(self, symbol: str, start_ms: int, end_ms: int) -> None:
        self.holes += 1
        self.backfilled += candle_backfill(instrument=self.instruments[symbol], timeframe="1s", start_ms=start_ms,
                                           end_ms=end_ms, rest=self.rest, cause=DataGap.Cause.DISCONNECT)

    def stored(self, symbol: str) -> dict:
        rows = candle_range(instrument=self.instruments[symbol], timeframe="1s", start_ms=0, end_ms=2**42)
        return {c.open_time: c for c in rows}


def test_forced_disconnects_and_bad_diffs_lose_and_duplicate_no_candle():
    r = soak(disconnects=8, fault_rate=0.01, speed=50, store_factory=DbStore)  # the whole session, ~13 s
    injected = sum(r.seq_injected.values())
    assert r.disconnects == 8 and r.reconnects == 8 and r.stream_gaps == 8
    assert injected >= 10 and r.seq_injected["dropped"] > 0 and r.seq_injected["reordered"] > 0
    assert r.seq_detected == injected, r.undetected
    # a duplicated diff sent into a connection being dropped never arrives: at most one per symbol and disconnect
    assert r.duplicates_injected - 2 * r.disconnects <= r.duplicates_ignored <= r.duplicates_injected
    assert r.expected >= 2 * 640 and r.holes >= 8 and r.backfilled > 0
    assert (r.lost, r.duplicated, r.wrong) == (0, 0, 0)
    assert r.books_equal == {"ETHUSDT": True, "BTCUSDT": True}
    # a consumer behind the venue resyncs onto a newer snapshot that can cover several faults at once
    assert r.resync_ms and r.chain_breaks >= r.disconnects
    assert DataGap.objects.filter(cause=DataGap.Cause.DISCONNECT, backfilled=False).count() == 0
