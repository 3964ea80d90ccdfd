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

from ml.market.candles import SecondCandleBuilder
from ml.market.cob import BucketImbalanceMA, ImbalanceMA, cob_frame
from ml.market.events import Candle, CobFrame, OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.gridbook import GridBook
from ml.market.native import NativeBuildError
from ml.market.orderbook import OrderBook
from ml.market.replay import ReplayVenue
from ml.market.sync import BookSynchronizer, SyncRule

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """What the session builds for one instrument.

    ``bucket_width`` in USD (1 for ETHUSDT, 10 for BTCUSDT in the peer benchmark), ``n_buckets``
    N (frames have 2N + 1 buckets), ``sync_rule`` "spot" or "futures" (see ``sync.py``),
    ``tick_size`` the price step of the :class:`GridBook` (0.01 on Binance spot BTC/ETH).
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
    far; ``books``: the live synced books (:class:`GridBook`, same queries as ``OrderBook``)
    at the end of the second. The books are the session's own objects and change on the next
    iteration: copy (``book.copy()``) any book you keep.
    """

    ts: int
    frames: dict[str, CobFrame] = field(default_factory=dict)
    candles: dict[str, Candle] = field(default_factory=dict)
    books: dict[str, GridBook | OrderBook] = field(default_factory=dict)


@dataclass(slots=True)
class _Instrument:
    spec: InstrumentSpec
    sync: BookSynchronizer
    candles: SecondCandleBuilder
    ma: ImbalanceMA
    bucket_ma: BucketImbalanceMA
    counts: Counter[str] = field(default_factory=Counter)


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

    The synchronizers fetch resync snapshots from ``venue.snapshot``. Events of symbols
    without an :class:`InstrumentSpec` are ignored (they do not move the clock either).
    Raises ValueError if two specs name the same symbol.
    """

    def __init__(self, venue: ReplayVenue, instruments: Sequence[InstrumentSpec]) -> None:
        self.venue = venue
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
        return out

    def seconds(self) -> Iterator[SecondResult]:
        """Yield one :class:`SecondResult` per closed exchange second (module docstring)."""
        current: int | None = None
        for event in self.venue.events():
            inst = self._instruments.get(event.symbol)
            if inst is None:
                continue
            ts = event.ts_event
            if ts is not None:
                if current is None:
                    current = ts - ts % 1000
                while ts >= current + 1000:
                    yield self._close(current)
                    current += 1000
            self._apply(inst, event)

    def _apply(self, inst: _Instrument, event: Trade | OrderBookDelta | OrderBookSnapshot) -> None:
        kind = type(event)
        if kind is OrderBookDelta:
            inst.sync.apply_delta(event)
        elif kind is Trade:
            inst.counts["trades"] += 1
            inst.candles.on_trade(event)
        elif kind is OrderBookSnapshot:
            inst.sync.apply_snapshot(event)

    def _close(self, ts: int) -> SecondResult:
        result = SecondResult(ts=ts)
        for symbol, inst in self._instruments.items():
            candle = inst.candles.close(ts)
            if candle is not None:
                result.candles[symbol] = candle
                inst.counts["candles"] += 1
            if not inst.sync.synced:
                continue
            book = inst.sync.book
            result.books[symbol] = book
            spec = inst.spec
            frame = cob_frame(book, symbol, ts, spec.bucket_width, spec.n_buckets)
            if frame is not None:
                result.frames[symbol] = inst.bucket_ma.update(inst.ma.update(frame))
                inst.counts["frames"] += 1
        return result
