"""The candle-only source: the engine driven over stored 1m/1h/1d candles, with no order book and
no trades.

Every second of ``[start_ms, end_ms)`` is an empty ``SecondResult`` (no 1 s candle, no COB frame,
no book): nothing is derived or interpolated from the 1m candles. Before each second, the stored
1m/1h/1d candles that have closed by then (``open_time + period <= ts + 1000``, the
``ml.features.base_input`` rule) are released into the engine's rings, as a live REST backfill
would. So the primary_1s, reference_1s and cob components are empty and the completeness gate
(GOGO_MIN_COMPLETENESS, 0.8 by default) refuses inference on every second: at most 3 of the 6
components can be present (overall <= 0.5). That is the honest result of a candle-only backtest of
this pipeline; the report counts the skipped seconds. With no book there is no price to trade
at either (the desk holds when the mid is unknown), so even a lowered gate yields no orders.
"""
from __future__ import annotations

import logging
from collections import deque

from apps.market import selectors as market_selectors
from ml.market.session import SecondResult

logger = logging.getLogger(__name__)

PERIOD_MS = {"1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}


class CandleSession:
    """Stands in for ``MarketSession`` (``seconds()``, ``stats``) over stored candles of the engine's
    instruments; the last released 1m close of the traded instrument is the engine's mark price."""

    def __init__(self, engine, start_ms: int, end_ms: int) -> None:
        if start_ms >= end_ms:
            raise ValueError("start must be before end")
        self.engine, self.start_ms, self.end_ms = engine, start_ms // 1000 * 1000, end_ms
        self.pending = {
            symbol: {tf: deque(market_selectors.candle_range(instrument=instrument, timeframe=tf,
                                                              start_ms=start_ms - period, end_ms=end_ms))
                     for tf, period in PERIOD_MS.items()}
            for symbol, instrument in engine.instruments.items()
        }
        self.stats = {symbol: {"gaps": 0} for symbol in engine.instruments}
        self.released = 0

    def seconds(self):
        for ts in range(self.start_ms, self.end_ms, 1000):
            self._release(ts)
            yield SecondResult(ts=ts)

    def _release(self, ts: int) -> None:
        if not self.engine.rings:  # the engine fills its rings from the store at its first second
            return
        for symbol, timeframes in self.pending.items():
            for tf, queue in timeframes.items():
                while queue and queue[0].open_time + PERIOD_MS[tf] <= ts + 1000:
                    candle = queue.popleft()
                    self.engine.rings[symbol][tf].upsert(candle)
                    self.engine.recent[symbol][tf].append(candle)
                    self.released += 1
                    if tf == "1m" and symbol == self.engine.traded.symbol:
                        self.engine.last_mid = candle.close
