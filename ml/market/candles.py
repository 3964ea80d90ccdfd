"""1 s candles from trades, and rollup of candles to longer timeframes.

Candle rules (as Binance builds klines, data README section 3): a candle covers
``[open_time, open_time + duration)`` by trade time ``T`` (ms); OHLC from trade prices in
trade order; ``volume = sum(q)`` (base units), ``quote_volume = sum(p * q)`` (quote currency),
``trade_count`` trades. A period with no trade is flat at the previous close with zero volume.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

from ml.market.events import Candle, Trade

logger = logging.getLogger(__name__)

TIMEFRAME_MS = {"1s": 1_000, "1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}


class SecondCandleBuilder:
    """Accumulate trades of one instrument and emit one 1 s candle per closed second.

    Seconds are closed in increasing order with :meth:`close`. A trade of a second already
    closed arrives too late to change its candle: it is counted in ``late_trades`` and ignored.
    Trades of later seconds may arrive before the current one is closed.
    """

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.last_close: float | None = None  # close of the last closed second with data
        self.late_trades = 0
        self._hole_done: tuple[int, int, str] | None = None
        self._pending: dict[int, list[float]] = {}  # second -> [o, h, l, c, v, qv, n]
        self._closed_until: int | None = None  # every second < this is closed
        self._unknown_until: int | None = None  # seconds < this (and >= a gap's start) are incomplete
        self._hole_start: int | None = None  # first second not emitted because of a stream gap
        self._hole_cause = ""
        self.gap_trades = 0  # trades dropped because their second is incomplete (stream gap)

    def mark_gap(self, from_ms: int, to_ms: int, cause: str = "disconnect") -> None:
        """The stream may have lost trades between ``from_ms`` and ``to_ms`` (ms, exchange time).

        Every not yet closed second overlapping ``[from_ms, to_ms]`` is incomplete: its pending
        trades are dropped (``gap_trades``) and :meth:`close` returns None for it. The previous
        close is forgotten, so the seconds after the gap without a trade are not filled flat at a
        pre-gap price either (None until the next trade). The seconds left without a candle are
        reported by :meth:`take_hole` once candles resume. Raises ValueError if ``to_ms < from_ms``.
        """
        if to_ms < from_ms:
            raise ValueError(f"gap ends before it starts: {from_ms} > {to_ms}")
        start = from_ms - from_ms % 1000
        if self._closed_until is not None:
            start = max(start, self._closed_until)
        end = to_ms - to_ms % 1000 + 1000
        for second in [s for s in self._pending if start <= s < end]:
            self.gap_trades += int(self._pending.pop(second)[6])
        self._unknown_until = max(self._unknown_until or end, end)
        self.last_close = None
        self._hole_cause = self._hole_cause or cause

    def take_hole(self) -> tuple[int, int, str] | None:
        """``(from_ms, to_ms, cause)``: the seconds ``[from_ms, to_ms)`` just closed without a
        candle because of a stream gap, reported once, when the first candle after them is
        emitted (None otherwise)."""
        hole, self._hole_done = self._hole_done, None
        return hole

    def on_trade(self, trade: Trade) -> None:
        """Add ``trade`` (``ts_event`` = trade time T, ms) to the candle of its second."""
        second = trade.ts_event - trade.ts_event % 1000
        if self._closed_until is not None and second < self._closed_until:
            self.late_trades += 1
            logger.debug("%s: late trade %d for closed second %d", self.symbol,
                         trade.trade_id, second)
            return
        price, size = trade.price, trade.size
        acc = self._pending.get(second)
        if acc is None:
            self._pending[second] = [price, price, price, price, size, price * size, 1]
            return
        acc[1] = max(acc[1], price)
        acc[2] = min(acc[2], price)
        acc[3] = price
        acc[4] += size
        acc[5] += price * size
        acc[6] += 1

    def close(self, second_ts_ms: int) -> Candle | None:
        """Close the exchange second ``[second_ts_ms, second_ts_ms + 1000)``.

        Returns its candle; a flat zero-volume candle at the previous close if it had no
        trade; None before the first trade ever, for a second marked incomplete by
        :meth:`mark_gap`, and after a gap until the next trade. Pending trades of earlier seconds that were
        never closed are folded into ``last_close`` (their candles are lost; close every second).
        Raises ValueError if ``second_ts_ms`` is not a whole second.
        """
        if second_ts_ms % 1000:
            raise ValueError(f"second_ts_ms must be a multiple of 1000, got {second_ts_ms}")
        for skipped in sorted(s for s in self._pending if s < second_ts_ms):
            logger.warning("%s: second %d was never closed", self.symbol, skipped)
            self.last_close = self._pending.pop(skipped)[3]
        self._closed_until = second_ts_ms + 1000
        acc = self._pending.pop(second_ts_ms, None)
        if self._unknown_until is not None and second_ts_ms < self._unknown_until:
            if acc is not None:  # trades seen in an incomplete second: never a candle
                self.gap_trades += int(acc[6])
            return self._no_candle(second_ts_ms)
        if acc is not None:
            o, h, lo, c, v, qv, n = acc
            self.last_close = c
            self._end_hole(second_ts_ms)
            return Candle(self.symbol, "1s", second_ts_ms, o, h, lo, c, v, qv, int(n))
        if self.last_close is None:
            return self._no_candle(second_ts_ms)
        c = self.last_close
        self._end_hole(second_ts_ms)
        return Candle(self.symbol, "1s", second_ts_ms, c, c, c, c, 0.0, 0.0, 0)

    def _no_candle(self, second_ts_ms: int) -> None:
        if self._hole_cause and self._hole_start is None:
            self._hole_start = second_ts_ms
        return None

    def _end_hole(self, second_ts_ms: int) -> None:
        if self._hole_start is not None:
            self._hole_done = (self._hole_start, second_ts_ms, self._hole_cause)
        self._hole_start = None
        self._hole_cause = ""
        self._unknown_until = None


def rollup(candles: Sequence[Candle], timeframe: str) -> list[Candle]:
    """Aggregate candles of one symbol into ``timeframe`` ("1m", "1h" or "1d") candles.

    Periods are aligned to the Unix epoch (UTC). Only complete periods are returned: a period
    is complete when every one of its sub-candles is present (e.g. 60 one-second candles for a
    minute). A partial period (at the start or end of the input, or with a hole) is dropped,
    never emitted with partial values. open = first open, close = last close, high = max,
    low = min, volume / quote_volume / trade_count = sums.

    Args:
        candles: ascending by ``open_time``, one symbol, one timeframe shorter than the target.

    Raises:
        ValueError: unknown timeframe, mixed symbols or timeframes, target not a whole
            multiple of the input, open times not aligned or not strictly increasing.
    """
    if timeframe not in TIMEFRAME_MS or timeframe == "1s":
        raise ValueError(f"timeframe must be one of 1m, 1h, 1d, got {timeframe!r}")
    if not candles:
        return []
    base, period = _check_rollup_input(candles, timeframe)
    need = period // base
    out: list[Candle] = []
    group: list[Candle] = []
    for candle in candles:
        if group and candle.open_time // period != group[0].open_time // period:
            if len(group) == need:
                out.append(_merge(group, timeframe, period))
            group = []
        group.append(candle)
    if len(group) == need:
        out.append(_merge(group, timeframe, period))
    return out


def _check_rollup_input(candles: Sequence[Candle], timeframe: str) -> tuple[int, int]:
    first = candles[0]
    base = TIMEFRAME_MS.get(first.timeframe)
    period = TIMEFRAME_MS[timeframe]
    if base is None or base >= period or period % base:
        raise ValueError(f"cannot roll {first.timeframe!r} candles up to {timeframe!r}")
    prev = None
    for c in candles:
        if c.symbol != first.symbol or c.timeframe != first.timeframe:
            raise ValueError(f"mixed candles: {c.symbol} {c.timeframe} after "
                             f"{first.symbol} {first.timeframe}")
        if c.open_time % base:
            raise ValueError(f"open_time {c.open_time} is not aligned to {c.timeframe}")
        if prev is not None and c.open_time <= prev:
            raise ValueError(f"open_time not strictly increasing at {c.open_time}")
        prev = c.open_time
    return base, period


def _merge(group: list[Candle], timeframe: str, period: int) -> Candle:
    first = group[0]
    return Candle(
        symbol=first.symbol,
        timeframe=timeframe,
        open_time=first.open_time - first.open_time % period,
        open=first.open,
        high=max(c.high for c in group),
        low=min(c.low for c in group),
        close=group[-1].close,
        volume=sum(c.volume for c in group),
        quote_volume=sum(c.quote_volume for c in group),
        trade_count=sum(c.trade_count for c in group),
    )


def second_candles(trades: Sequence[Trade], symbol: str) -> dict[int, Candle]:
    """The 1 s candles of ``trades`` (one symbol, sorted by ``T``), keyed by open time (ms): every
    second from the first trade's to the one before the last trade's (the last may be incomplete),
    empty seconds flat at the previous close, as :class:`SecondCandleBuilder` builds them. The
    reference a live session's candles are checked against (tests, ``bench/ingest.py``)."""
    if not trades:
        return {}
    builder = SecondCandleBuilder(symbol)
    first = trades[0].ts_event - trades[0].ts_event % 1000
    last = trades[-1].ts_event - trades[-1].ts_event % 1000
    out: dict[int, Candle] = {}
    i = 0
    for second in range(first, last, 1000):
        while i < len(trades) and trades[i].ts_event < second + 1000:
            builder.on_trade(trades[i])
            i += 1
        candle = builder.close(second)
        if candle is not None:
            out[second] = candle
    return out
