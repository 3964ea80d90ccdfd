"""Floor-trader pivot points for the dashboard's candle chart. Pure Python; no numpy needed.

Standard (classic floor) pivots of a period come from the previous period's high H, low L and
close C (J. Person, "A Complete Guide to Technical Trading Tactics", Wiley 2004, ch. 5; the same
formulas as the "Standard" pivots of TradingView and most charting packages):

    P  = (H + L + C) / 3
    R1 = 2P - L          S1 = 2P - H
    R2 = P + (H - L)     S2 = P - (H - L)

A candle's pivots are therefore drawn over the *next* candle of the same timeframe: a 1m chart
shows, over each minute, the levels of the minute before it (no look-ahead). Swing highs / lows
(Williams market structure) live in :mod:`ml.pivots`.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

logger = logging.getLogger(__name__)

LEVELS = ("s2", "s1", "p", "r1", "r2")


@dataclass(frozen=True, slots=True)
class FloorPivots:
    """One period's standard floor pivots, quote currency (USD for USDT pairs); s2 <= s1 <= p <= r1 <= r2."""

    p: float
    r1: float
    r2: float
    s1: float
    s2: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def floor_pivots(high: float, low: float, close: float) -> FloorPivots:
    """Standard floor pivots (module docstring) from the previous period's high, low and close.

    Raises ValueError naming the bad field when a value is not finite, when ``high < low`` or when
    ``close`` lies outside [low, high]."""
    for name, value in (("high", high), ("low", low), ("close", close)):
        if not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite price, got {value!r}")
    if high < low:
        raise ValueError(f"high: {high} is below low {low}")
    if not low <= close <= high:
        raise ValueError(f"close: {close} is outside [low {low}, high {high}]")
    p = (high + low + close) / 3.0
    span = high - low
    return FloorPivots(p=p, r1=2.0 * p - low, r2=p + span, s1=2.0 * p - high, s2=p - span)


def floor_pivot_series(candles: Sequence[Sequence[float]]) -> list[dict[str, float] | None]:
    """Pivots in force during each candle of an ascending series of ``(high, low, close)``.

    Returns a list as long as ``candles``: item ``i`` is the pivots of candle ``i - 1`` as a dict
    ``{"p", "r1", "r2", "s1", "s2"}`` (None for the first candle, and for a candle whose predecessor
    is invalid, which is logged). Callers pass consecutive candles of one timeframe; a gap in the
    series makes item ``i`` use the last candle before the gap, as a chart would."""
    out: list[dict[str, float] | None] = [None] * len(candles)
    for i in range(1, len(candles)):
        high, low, close = candles[i - 1][:3]
        try:
            out[i] = floor_pivots(float(high), float(low), float(close)).as_dict()
        except ValueError as exc:
            logger.warning("floor pivots of candle %d not computed: %s", i - 1, exc)
    return out
