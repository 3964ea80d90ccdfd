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
        self._pending: dict[int, list[float]] = {}  # second -> [o, h, l, c, v, qv, n]
        self._closed_until: int | None = None  # every second < this is closed

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
        trade; None before the first trade ever. Pending trades of earlier seconds that were
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
        if acc is not None:
            o, h, lo, c, v, qv, n = acc
            self.last_close = c
            return Candle(self.symbol, "1s", second_ts_ms, o, h, lo, c, v, qv, int(n))
        if self.last_close is None:
            return None
        c = self.last_close
        return Candle(self.symbol, "1s", second_ts_ms, c, c, c, c, 0.0, 0.0, 0)


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
