"""Williams market structure: recursive swing highs / lows (pivots) on candles, with support and
resistance per level. Pure numpy; stable API (``williams_pivots``, ``WilliamsPivots``,
``PivotLevel``) for models and the dashboard.

Rule (Larry Williams, "Long-Term Secrets to Short-Term Trading", ch. 2, market structure):

- level 1: a candle is a swing high if its high is above the highs of the ``strength`` candles
  before it and not below the highs of the ``strength`` candles after it (swing low: its low below
  the lows before, not above the lows after). Ties resolve to the first candle of a flat top or
  bottom, so a flat top of equal highs is one pivot, not two;
- level k (2..levels): the same test applied to the sequence of level k-1 swing highs (lows), one
  neighbour on each side, as Williams builds intermediate-term points from short-term ones and
  long-term points from intermediate ones;
- a pivot is known only once its right-hand neighbours exist: the last ``strength`` candles are
  never level-1 pivots, and the last pivot of level k-1 is never a level-k pivot (no look-ahead).

Support / resistance of a level: the price of its latest swing low / swing high (NaN if none).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

MAX_LEVELS = 10


@dataclass(frozen=True, slots=True)
class PivotLevel:
    """Pivots of one level. Indices are positions in the input candles (int64, ascending);
    prices are the candles' high (swing highs) or low (swing lows), float64, quote currency."""

    level: int
    high_index: np.ndarray
    high_price: np.ndarray
    low_index: np.ndarray
    low_price: np.ndarray

    @property
    def resistance(self) -> float:
        """Price of the latest swing high of this level (NaN if none)."""
        return float(self.high_price[-1]) if len(self.high_price) else float("nan")

    @property
    def support(self) -> float:
        """Price of the latest swing low of this level (NaN if none)."""
        return float(self.low_price[-1]) if len(self.low_price) else float("nan")


@dataclass(frozen=True, slots=True)
class WilliamsPivots:
    """``levels[k - 1]`` is level k (1 = short-term swings, 5 = the longest-term ones)."""

    levels: tuple[PivotLevel, ...]

    def level(self, k: int) -> PivotLevel:
        """Level ``k`` (1-based). IndexError if out of range."""
        if not 1 <= k <= len(self.levels):
            raise IndexError(f"level must be 1..{len(self.levels)}, got {k}")
        return self.levels[k - 1]

    def support_resistance(self) -> np.ndarray:
        """Shape (levels, 2) float64: [support, resistance] per level, NaN where unknown."""
        return np.array([[lv.support, lv.resistance] for lv in self.levels], dtype=np.float64)


def williams_pivots(high: np.ndarray, low: np.ndarray, levels: int = 5, strength: int = 1) -> WilliamsPivots:
    """Recursive Williams pivots of candles (module docstring for the rule).

    Args:
        high, low: shape (T,) candle highs and lows (quote currency), oldest first.
        levels: number of recursive levels (1..10; default 5).
        strength: candles on each side a level-1 pivot must beat (>= 1; Williams uses 1).

    Returns:
        :class:`WilliamsPivots` with ``levels`` levels (empty arrays where none).

    Raises:
        ValueError: shapes differ or are not 1-D, a value is NaN / infinite, a high is below its
            low, or ``levels`` / ``strength`` is out of range.
    """
    high = np.asarray(high, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    if high.ndim != 1 or high.shape != low.shape:
        raise ValueError(f"high and low must be 1-D of the same length, got {high.shape} and {low.shape}")
    if not (np.isfinite(high).all() and np.isfinite(low).all()):
        raise ValueError("high and low must be finite (no NaN / inf)")
    if (high < low).any():
        raise ValueError(f"high below low at candle {int(np.argmax(high < low))}")
    if not 1 <= levels <= MAX_LEVELS or strength < 1:
        raise ValueError(f"levels must be 1..{MAX_LEVELS} and strength >= 1, got {levels!r}, {strength!r}")
    all_idx = np.arange(len(high), dtype=np.int64)
    hi_idx, lo_idx = all_idx, all_idx
    out = []
    for k in range(1, levels + 1):
        s = strength if k == 1 else 1
        hi_idx = hi_idx[_swings(high[hi_idx], s, highs=True)]
        lo_idx = lo_idx[_swings(low[lo_idx], s, highs=False)]
        out.append(PivotLevel(k, hi_idx, high[hi_idx], lo_idx, low[lo_idx]))
    return WilliamsPivots(tuple(out))


def _swings(values: np.ndarray, strength: int, highs: bool) -> np.ndarray:
    """Positions in ``values`` (shape (n,)) that beat ``strength`` neighbours on each side:
    strictly on the left, or equal on the right. Shape (m,) int64, ascending."""
    n = len(values)
    if n < 2 * strength + 1:
        return np.empty(0, dtype=np.int64)
    center = values[strength:n - strength]
    ok = np.ones(n - 2 * strength, dtype=bool)
    for s in range(1, strength + 1):
        left = values[strength - s:n - strength - s]
        right = values[strength + s:n - strength + s]
        if highs:
            ok &= (center > left) & (center >= right)
        else:
            ok &= (center < left) & (center <= right)
    return np.nonzero(ok)[0].astype(np.int64) + strength
