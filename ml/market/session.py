"""Drive a venue through synchronized books, 1 s candles and COB frames, second by second.

Clock: exchange time. The session walks ``venue.events()`` (exchange-time ordered); exchange
second ``[ts, ts + 1000)`` is closed when the first event with ``ts_event >= ts + 1000``
arrives, before that event is applied. Every second from the first event's second to the last
complete one is emitted, contiguously, even if no event fell in it. The last second of the
stream is never complete (no later event closes it) and is not emitted.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ml.market.candles import SecondCandleBuilder
from ml.market.cob import BucketImbalanceMA, ImbalanceMA, cob_frame
from ml.market.events import Candle, CobFrame, OrderBookDelta, OrderBookSnapshot, StreamGap, Trade
from ml.market.gridbook import GridBook
from ml.market.native import NativeBuildError
from ml.market.orderbook import OrderBook
from ml.market.replay import ReplayVenue
from ml.market.sync import BookSynchronizer, SyncRule

logger = logging.getLogger(__name__)


class LiveVenueLike(Protocol):
    """What a session needs from a venue (``ReplayVenue``, ``apps.market.venues.live.LiveVenue``):
    events in arrival order (a live venue adds :class:`StreamGap` markers), synchronous REST
    snapshots for resyncs, and per-symbol counters."""

    counts: dict[str, Counter[str]]

    def events(self) -> Iterator[Trade | OrderBookDelta | OrderBookSnapshot | StreamGap]: ...

    def snapshot(self, symbol: str) -> OrderBookSnapshot: ...


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """What the session builds for one instrument.

    ``bucket_width`` in USD (1 for ETHUSDT, 10 for BTCUSDT in the peer benchmark), ``n_buckets``
    N (frames have 2N + 1 buckets), ``sync_rule`` "spot", "futures" or "snapshot" (see ``sync.py``;
    the Engine takes a live venue's ``sync_rule``), ``tick_size`` the price step of the
    :class:`GridBook` (0.01 on Binance spot BTC/ETH).
    """

    symbol: str
    bucket_width: float
    n_buckets: int = 20
    sync_rule: SyncRule = "spot"
    tick_size: float = 0.01


@dataclass(slots=True)
class SecondResult:
    """Products of one closed exchange second ``[ts, ts + 1000)`` (ts in ms).

    ``frames``: symbols whose book is synced; ``candles``: symbols with at least one trade so
    far (and no stream gap over the second); ``gaps``: per symbol, a :class:`StreamGap` whose
    ``[from_ms, to_ms)`` are the seconds closed *without* a candle because the live stream lost
    messages, reported once, at the first second with a candle again: fetch those candles
    through REST (never interpolate them); ``books``: the live synced books (:class:`GridBook`, same queries as ``OrderBook``)
    at the end of the second. The books are the session's own objects and change on the next
    iteration: copy (``book.copy()``) any book you keep.
    """

    ts: int
    frames: dict[str, CobFrame] = field(default_factory=dict)
    candles: dict[str, Candle] = field(default_factory=dict)
    books: dict[str, GridBook | OrderBook] = field(default_factory=dict)
    gaps: dict[str, StreamGap] = field(default_factory=dict)
    trades: dict[str, list[Trade]] = field(default_factory=dict)  # applied since the previous close, in order


@dataclass(slots=True)
class _Instrument:
    spec: InstrumentSpec
    sync: BookSynchronizer
    candles: SecondCandleBuilder
    ma: ImbalanceMA
    bucket_ma: BucketImbalanceMA | _NoBucketMA
    counts: Counter[str] = field(default_factory=Counter)
    trades: list[Trade] = field(default_factory=list)  # since the last close (SecondResult.trades)
    no_frames_until: int = 0  # ms: seconds before this overlap a stream gap (stale book)


class _NoBucketMA:
    """Stands in for :class:`BucketImbalanceMA` after :meth:`MarketSession.skip_bucket_mas`."""

    def update(self, frame: CobFrame) -> CobFrame:
        return frame


def _new_book(spec: InstrumentSpec) -> GridBook | OrderBook:
    try:
        return GridBook(spec.tick_size)
    except NativeBuildError as exc:
        global _WARNED_NO_NATIVE
        if not _WARNED_NO_NATIVE:
            logger.warning("C order book unavailable, using the Python one: %s", exc)
            _WARNED_NO_NATIVE = True
        return OrderBook()


_WARNED_NO_NATIVE = False


class MarketSession:
    """Per-second COB frames and 1 s candles of several instruments from one venue.

    Books are :class:`GridBook` (C price grid) kept in sync by :class:`BookSynchronizer`; frames
    come from ``cob_frame`` (buckets in C) with scalar and per-bucket imbalance MAs. Where the C
    engine cannot be built (no gcc), the dict :class:`OrderBook` is used instead (same results,
    slower), with one warning.

    A :class:`StreamGap` from a live venue marks the seconds it overlaps as incomplete: no
    candle (never one filled from the previous close) and no frame (the book may be stale) for
    them; the hole is reported in :attr:`SecondResult.gaps` once candles resume.

    The synchronizers fetch resync snapshots from ``venue.snapshot``. Events of symbols
    without an :class:`InstrumentSpec` are ignored (they do not move the clock either).
    ``close_delay_ms`` (live venues): see :meth:`seconds`. Raises ValueError if two specs name the
    same symbol or the delay is negative.
    """

    def __init__(self, venue: ReplayVenue | LiveVenueLike, instruments: Sequence[InstrumentSpec],
                 close_delay_ms: int = 0) -> None:
        if close_delay_ms < 0:
            raise ValueError(f"close_delay_ms must be >= 0, got {close_delay_ms}")
        self.venue = venue
        self.close_delay_ms = close_delay_ms
        self._instruments: dict[str, _Instrument] = {}
        for spec in instruments:
            symbol = spec.symbol.upper()
            if symbol in self._instruments:
                raise ValueError(f"instrument {symbol} given twice")
            self._instruments[symbol] = _Instrument(
                spec=spec,
                sync=BookSynchronizer(symbol, spec.sync_rule, venue.snapshot, book=_new_book(spec)),
                candles=SecondCandleBuilder(symbol),
                ma=ImbalanceMA(),
                bucket_ma=BucketImbalanceMA(),
            )

    @property
    def specs(self) -> list[InstrumentSpec]:
        """The instruments' specs, in the order they were given."""
        return [inst.spec for inst in self._instruments.values()]

    def skip_bucket_mas(self) -> None:
        """From now on leave ``CobFrame.bucket_imbalance_ma`` unset: the per-bucket imbalance MAs
        (~0.8 ms a frame, the largest single cost of a replay) are no model input, and a fast
        backtest stores no frame (``apps.backtest.fast``)."""
        for inst in self._instruments.values():
            inst.bucket_ma = _NoBucketMA()

    def synchronizer(self, symbol: str) -> BookSynchronizer:
        """The book synchronizer of ``symbol`` (KeyError if unknown)."""
        return self._instruments[symbol.upper()].sync

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Per symbol: the synchronizer's counters (gaps, resyncs, deltas_applied,
        deltas_dropped, level_updates, snapshots), then trades, late_trades, malformed
        (recording lines), withheld (fault injection), frames, candles."""
        out = {}
        for symbol, inst in self._instruments.items():
            venue_counts = self.venue.counts.get(symbol, Counter())
            out[symbol] = {
                **inst.sync.stats.as_dict(),
                "trades": inst.counts["trades"], "late_trades": inst.candles.late_trades,
                "malformed": venue_counts["malformed"], "withheld": venue_counts["withheld"],
                "frames": inst.counts["frames"], "candles": inst.counts["candles"],
            }
            if inst.counts["stream_gaps"]:
                out[symbol]["stream_gaps"] = inst.counts["stream_gaps"]
                out[symbol]["gap_trades"] = inst.candles.gap_trades
        return out

    def seconds(self) -> Iterator[SecondResult]:
        """Yield one :class:`SecondResult` per closed exchange second (module docstring).

        With ``close_delay_ms`` (a live venue: a trade can arrive after a diff of the next second, up
        to ~150 ms late in the 2024-08 spot recordings), each second's frames are still taken at its
        end, but its candles wait for an event ``close_delay_ms`` past the end, so late trades count.
        """
        current: int | None = None
        frames: dict[int, SecondResult] = {}  # seconds whose frames are taken, candles not closed yet
        delay = self.close_delay_ms
        for event in self.venue.events():
            inst = self._instruments.get(event.symbol)
            if inst is None:
                continue
            if type(event) is StreamGap:  # does not move the clock: the next message does
                self._on_gap(inst, event)
                continue
            ts = event.ts_event
            if ts is not None:
                if current is None:
                    current = ts - ts % 1000
                while ts >= current + 1000:
                    if not delay:
                        yield self._close(current)
                    else:
                        frames[current] = self._frames(SecondResult(ts=current))
                    current += 1000
                while frames and ts >= next(iter(frames)) + 1000 + delay:
                    yield self._candles(frames.pop(next(iter(frames))))
            self._apply(inst, event)

    def _apply(self, inst: _Instrument, event: Trade | OrderBookDelta | OrderBookSnapshot) -> None:
        kind = type(event)
        if kind is OrderBookDelta:
            inst.sync.apply_delta(event)
        elif kind is Trade:
            inst.counts["trades"] += 1
            inst.candles.on_trade(event)
            inst.trades.append(event)
        elif kind is OrderBookSnapshot:
            inst.sync.apply_snapshot(event)

    def _on_gap(self, inst: _Instrument, gap: StreamGap) -> None:
        """A live stream lost messages: no candle and no frame for the seconds it overlaps.

        The book is kept: if no diff was lost, the next diff continues its chain; if one was,
        the synchronizer sees the break and resyncs from a snapshot.
        """
        inst.counts["stream_gaps"] += 1
        inst.candles.mark_gap(gap.from_ms, gap.to_ms, gap.cause)
        inst.no_frames_until = max(inst.no_frames_until, gap.to_ms - gap.to_ms % 1000)
        logger.info("%s: stream gap %d..%d (%s)", gap.symbol, gap.from_ms, gap.to_ms, gap.cause)

    def _close(self, ts: int) -> SecondResult:
        result = SecondResult(ts=ts)
        for symbol, inst in self._instruments.items():
            if inst.trades:  # the paper client's resting limit orders fill from these prints
                result.trades[symbol], inst.trades = inst.trades, []
        return self._frames(self._candles(result))

    def _candles(self, result: SecondResult) -> SecondResult:
        ts = result.ts
        for symbol, inst in self._instruments.items():
            candle = inst.candles.close(ts)
            if candle is not None:
                result.candles[symbol] = candle
                inst.counts["candles"] += 1
                hole = inst.candles.take_hole()
                if hole is not None:
                    result.gaps[symbol] = StreamGap(symbol, hole[0], hole[1], hole[2])
        return result

    def _frames(self, result: SecondResult) -> SecondResult:
        ts = result.ts
        for symbol, inst in self._instruments.items():
            if not inst.sync.synced or ts < inst.no_frames_until:
                continue
            book = inst.sync.book
            result.books[symbol] = book
            spec = inst.spec
            frame = cob_frame(book, symbol, ts, spec.bucket_width, spec.n_buckets)
            if frame is not None:
                result.frames[symbol] = inst.bucket_ma.update(inst.ma.update(frame))
                inst.counts["frames"] += 1
        return result
