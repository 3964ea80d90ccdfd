"""The market step of one venue: closed exchange seconds (``ml.market.session``: order books, COB
frames, 1 s candles) into the hot rings, 1m/1h/1d roll-ups, stream-gap backfills and data-gap records.

Per second (:meth:`MarketStep.apply`), for every instrument: a stream gap first (its 1 s candles
backfilled through REST when the venue has a client, else recorded as a DataGap; never
interpolated), then the 1 s candle (ring, roll-up) and the COB frame (ring). The rows to store are
returned (:class:`MarketRows`) for the engine's storage; nothing here buffers them.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from apps.market import selectors as market_selectors
from apps.market import services as market_services
from apps.market.convert import ms_to_datetime
from apps.market.models import DataGap, Instrument
from apps.pipeline.stages.counters import InstrumentCounters
from ml.features.rings import CandleRing, FrameRing
from ml.market.events import Candle as CandleEvent
from ml.market.session import InstrumentSpec, MarketSession

logger = logging.getLogger(__name__)

PERIOD_MS = {"1s": 1_000, "1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}
ROLLUP = (("1s", "1m", 60), ("1m", "1h", 60), ("1h", "1d", 24))
RING_CAPACITY = 600
RECENT = 60  # candles per timeframe kept for roll-ups, volatility and sizing


@dataclass
class MarketRows:
    """What one second adds to the market store: symbol -> 1 s candle and closed roll-ups, in
    order; symbol -> COB frames."""

    candles: dict[str, list[CandleEvent]] = field(default_factory=dict)
    frames: dict[str, list] = field(default_factory=dict)


class MarketStep:
    """One venue's market step (module docstring).

    ``venue``: a ``ml.market.replay.ReplayVenue`` or a live venue (``apps.market.venues``);
    ``instruments``: symbol -> enabled Instrument; ``sync_rule``: "spot", "futures" or "snapshot"
    (``ml.market.sync``); ``counters``: symbol -> the run's counters. ``session`` (the second
    source) may be replaced before the first second (a backtest truncates it or feeds stored
    candles). Public state read by the other stages and the drivers: ``rings`` (symbol ->
    timeframe -> CandleRing), ``frame_rings`` (symbol -> FrameRing), ``recent`` (symbol ->
    timeframe -> the last 60 candles), ``rest`` (the venue's REST client, None on a replay).
    """

    def __init__(self, *, venue, instruments: dict[str, Instrument], sync_rule: str,
                 counters: dict[str, InstrumentCounters]) -> None:
        self.venue, self.instruments, self.counters = venue, instruments, counters
        self.rest = getattr(venue, "rest", None)  # live: REST backfills through the venue's client
        specs = [InstrumentSpec(s, float(i.bucket_width), i.bucket_count, sync_rule, tick_size=float(i.tick_size))
                 for s, i in instruments.items()]
        self.session = MarketSession(venue, specs, close_delay_ms=getattr(venue, "close_delay_ms", 0))
        self.rings: dict[str, dict[str, CandleRing]] = {}
        self.frame_rings: dict[str, FrameRing] = {s: FrameRing(capacity=RING_CAPACITY) for s in instruments}
        self.recent: dict[str, dict[str, deque]] = {}
        self.gaps_seen = dict.fromkeys(instruments, 0)

    def start(self, ts: int) -> None:
        """Fill the rings with the candles fully closed before ``ts`` (ms; never later data), after a
        REST backfill of the last RING_CAPACITY 1m/1h/1d candles when the venue is live."""
        if self.rest is not None:
            self._backfill_on_start(ts)
        for symbol, instrument in self.instruments.items():
            self.rings[symbol], self.recent[symbol] = {}, {}
            for timeframe, period in PERIOD_MS.items():
                closed = market_selectors.candle_list(instrument=instrument, timeframe=timeframe,
                                                      end=ms_to_datetime(ts - period + 1), limit=RING_CAPACITY)
                ring = CandleRing(timeframe, capacity=RING_CAPACITY)
                ring.extend(closed)
                self.rings[symbol][timeframe] = ring
                self.recent[symbol][timeframe] = deque(closed[-RECENT:], maxlen=RECENT)

    def apply(self, second) -> MarketRows:
        """Take one closed second (``SecondResult`` or a market tape's ``TapeSecond``: ``ts`` ms,
        ``candles``, ``frames``, ``gaps`` by symbol) into the rings; returns the rows to store."""
        rows = MarketRows()
        for symbol in self.instruments:
            gap = second.gaps.get(symbol)
            if gap is not None:
                self._backfill_gap(symbol, gap)
            candle = second.candles.get(symbol)
            if candle is not None:
                self.counters[symbol].candles_1s += 1
                self.rings[symbol]["1s"].upsert(candle)
                rows.candles.setdefault(symbol, []).append(candle)
                self._roll_up(symbol, candle, rows)
            frame = second.frames.get(symbol)
            if frame is not None:
                self.counters[symbol].cob_frames += 1
                self.frame_rings[symbol].upsert(frame)
                rows.frames.setdefault(symbol, []).append(frame)
        return rows

    def record_sequence_gaps(self, ts: int, totals: dict[str, int] | None = None) -> None:
        """Store a DataGap (cause sequence_gap) at ``ts`` for every symbol whose synchronizer found
        new gaps. ``totals``: symbol -> gaps found so far (a market tape's counts); None reads the
        session's ``stats`` (rebuilt on every read: a fast driver passes the taped totals)."""
        if totals is None:
            totals = {symbol: self.session.stats[symbol]["gaps"] for symbol in self.instruments}
        for symbol, gaps in totals.items():
            if gaps > self.gaps_seen[symbol]:
                market_services.data_gap_record(instrument=self.instruments[symbol], cause=DataGap.Cause.SEQUENCE_GAP,
                                                ts_event_ms=ts, detail=f"{gaps - self.gaps_seen[symbol]} gap(s), resynced")
                self.gaps_seen[symbol] = gaps
            self.counters[symbol].sequence_gaps = gaps

    def _backfill_on_start(self, ts: int) -> None:
        """Live: the last RING_CAPACITY closed 1m/1h/1d candles through REST (a venue error is logged,
        the session goes on with what is stored)."""
        from apps.market.backfill import candle_backfill_on_start
        from apps.market.venues.ccxt_rest import VenueError

        for instrument in self.instruments.values():
            if not instrument.stream_candles:
                continue
            try:
                candle_backfill_on_start(instrument=instrument, now_ms=ts, count=RING_CAPACITY, rest=self.rest)
            except VenueError as exc:
                logger.error("%s: start-up candle backfill failed: %s", instrument, exc)

    def _backfill_gap(self, symbol: str, gap) -> None:
        """A stream gap's 1 s candles (``[gap.from_ms, gap.to_ms)``) through REST into the store and the rings,
        before this second's rollup; a hole the venue cannot fill stays a DataGap (never interpolated)."""
        from apps.market.backfill import candle_backfill
        from apps.market.venues.ccxt_rest import VenueError

        instrument = self.instruments[symbol]
        cause = DataGap.Cause.MISSING_CANDLES if gap.cause == "connect" else DataGap.Cause.DISCONNECT
        self.counters[symbol].stream_gaps += 1
        if self.rest is None:
            market_services.data_gap_upsert(instrument=instrument, cause=cause, ts_event_ms=gap.from_ms,
                                            ts_end_ms=gap.to_ms, detail=f"stream gap ({gap.cause}); no REST client")
            return
        try:
            candle_backfill(instrument=instrument, timeframe="1s", start_ms=gap.from_ms, end_ms=gap.to_ms, rest=self.rest,
                            cause=cause, detail=f"after stream gap ({gap.cause})")
        except VenueError as exc:
            logger.error("%s: 1s backfill of %d..%d failed: %s", symbol, gap.from_ms, gap.to_ms, exc)
        for candle in market_selectors.candle_range(instrument=instrument, timeframe="1s", start_ms=gap.from_ms,
                                                    end_ms=gap.to_ms):
            self.counters[symbol].candles_backfilled += 1
            self.rings[symbol]["1s"].upsert(candle)
            self.recent[symbol]["1s"].append(candle)

    def _roll_up(self, symbol: str, candle: CandleEvent, rows: MarketRows) -> None:
        """When a 1m/1h/1d period closes, build it from the lower timeframe or backfill it."""
        self.recent[symbol]["1s"].append(candle)
        closed = candle
        for lower, upper, count in ROLLUP:
            end = closed.open_time + PERIOD_MS[lower]
            if end % PERIOD_MS[upper]:
                return
            start = end - PERIOD_MS[upper]
            parts = [c for c in self.recent[symbol][lower] if start <= c.open_time < end]
            closed = _aggregate(symbol, upper, start, parts) if len(parts) == count else self._backfill(symbol, upper, start)
            if closed is None:
                return
            self.rings[symbol][upper].upsert(closed)
            self.recent[symbol][upper].append(closed)
            rows.candles.setdefault(symbol, []).append(closed)

    def _backfill(self, symbol: str, timeframe: str, open_time: int) -> CandleEvent | None:
        """A period our trades do not fully cover (e.g. the session's first minute) comes from the
        candle store, as a REST backfill would; a period nobody has is logged as a data gap."""
        instrument = self.instruments[symbol]
        stored = market_selectors.candle_get(instrument=instrument, timeframe=timeframe,
                                             open_time=ms_to_datetime(open_time))
        if stored is None and self.rest is not None:  # live: the venue has the closed period
            from apps.market.backfill import candle_backfill
            from apps.market.venues.ccxt_rest import VenueError

            try:
                candle_backfill(instrument=instrument, timeframe=timeframe, start_ms=open_time,
                                end_ms=open_time + PERIOD_MS[timeframe], rest=self.rest, detail="rollup")
            except VenueError as exc:
                logger.error("%s: %s backfill at %d failed: %s", symbol, timeframe, open_time, exc)
            stored = market_selectors.candle_get(instrument=instrument, timeframe=timeframe,
                                                 open_time=ms_to_datetime(open_time))
        if stored is None:
            market_services.data_gap_record(instrument=instrument, cause=DataGap.Cause.MISSING_CANDLES,
                                            ts_event_ms=open_time, detail=f"{timeframe} candle not available")
        return stored


def _aggregate(symbol: str, timeframe: str, open_time: int, parts: list[CandleEvent]) -> CandleEvent:
    return CandleEvent(
        symbol, timeframe, open_time, parts[0].open, max(c.high for c in parts), min(c.low for c in parts),
        parts[-1].close, sum(c.volume for c in parts), sum(c.quote_volume for c in parts),
        sum(c.trade_count for c in parts),
    )
