"""Technical indicators per candle row, vectorized numpy, unitless, no future data.

Every value at row ``t`` is computed from rows ``0..t`` of the same window only: recursive
averages are matrix products with a lower-triangular weight matrix (rows after ``t`` get weight
exactly 0), rolling sums are differences of cumulative sums. The first rows of a window are a
warm-up: rolling windows there use the rows available (as pandas ``min_periods=1``) and the
exponential averages start at the window's first row (pandas ``ewm(adjust=False)``).

=====  ============  =========================================================================
col    name          definition (close c, high h, low l, volume v; n in brackets)
=====  ============  =========================================================================
0      rsi           RSI (14), Wilder smoothing (alpha 1/14) of gains and losses, / 100 in
                     [0, 1]; 0.5 while there is no move yet (Wilder, "New Concepts in Technical
                     Trading Systems", 1978)
1      macd          (EMA12(c) - EMA26(c)) / c   (Appel)
2      macd_signal   EMA9 of macd
3      macd_hist     macd - macd_signal
4      bb_pctb       Bollinger %b: (c - lower) / (upper - lower), SMA20 +/- 2 population std
                     (Bollinger); 0.5 when the band has zero width
5      bb_width      (upper - lower) / SMA20
6      atr           ATR (14), Wilder smoothing of the true range, / c
7      vwap          log(c / VWAP20), VWAP20 = sum(typical * v) / sum(v) over 20 rows,
                     typical = (h + l + c) / 3; 0 when no volume
8      obv           OBV change over 20 rows / volume over 20 rows, in [-1, 1] (Granville's
                     on-balance volume, made window-independent)
=====  ============  =========================================================================

Rows with no price (zero rows before any data) give 0 in every column; the exponential averages
of the first ~30 real rows after such zero rows are biased towards 0 (a window that starts
before the data does).
"""
from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

logger = logging.getLogger(__name__)

INDICATOR_NAMES = ("rsi", "macd", "macd_signal", "macd_hist", "bb_pctb", "bb_width", "atr", "vwap", "obv")


@lru_cache(maxsize=32)
def _ema_matrix(n: int, alpha: float) -> np.ndarray:
    """(n, n) lower-triangular W with ``W @ x`` = pandas ``x.ewm(alpha=alpha, adjust=False).mean()``:
    y_0 = x_0, y_t = (1 - alpha) y_{t-1} + alpha x_t."""
    t = np.arange(n)
    lag = t[:, None] - t[None, :]  # (n, n) t - k
    w = np.where(lag >= 0, alpha * (1.0 - alpha) ** np.maximum(lag, 0), 0.0)
    w[:, 0] = (1.0 - alpha) ** t  # the first row carries the remaining weight
    w.setflags(write=False)
    return w


def ema(x: np.ndarray, alpha: float) -> np.ndarray:
    """Exponential moving average along the last axis of (..., T), starting at the first row."""
    return x @ _ema_matrix(x.shape[-1], alpha).T


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of the last ``n`` rows (fewer at the start) along the last axis of (..., T)."""
    c = np.cumsum(x, axis=-1)
    out = c.copy()
    out[..., n:] -= c[..., :-n]
    return out


def _div(a: np.ndarray, b: np.ndarray, default: float = 0.0) -> np.ndarray:
    return np.divide(a, b, out=np.full(np.broadcast(a, b).shape, default), where=b != 0)


def indicators(candles: np.ndarray) -> np.ndarray:
    """Indicators of candle windows (module docstring for the columns).

    Args:
        candles: (..., T, 5) raw [open, high, low, close, volume], oldest first (USD, base units).

    Returns:
        float32 (..., T, 9) in the order of INDICATOR_NAMES.

    Raises:
        ValueError: the last axis is not 5.
    """
    if candles.shape[-1] != 5:
        raise ValueError(f"candle windows need 5 columns [o, h, l, c, v], got shape {candles.shape}")
    x = np.asarray(candles, dtype=np.float64)
    h, low, c, v = x[..., 1], x[..., 2], x[..., 3], x[..., 4]  # (..., T)
    t_len = c.shape[-1]
    prev_c = np.concatenate([c[..., :1], c[..., :-1]], axis=-1)
    move = np.where(prev_c > 0, c - prev_c, 0.0)
    gain, loss = ema(np.maximum(move, 0.0), 1 / 14), ema(np.maximum(-move, 0.0), 1 / 14)
    rsi = _div(gain, gain + loss, default=0.5)

    macd = _div(ema(c, 2 / 13) - ema(c, 2 / 27), c)
    signal = ema(macd, 2 / 10)

    count = np.minimum(np.arange(1, t_len + 1), 20)
    mean = rolling_sum(c, 20) / count
    var = np.maximum(rolling_sum(c * c, 20) / count - mean * mean, 0.0)
    band = 2.0 * np.sqrt(var)  # upper - mean
    pctb = _div(c - (mean - band), 2.0 * band, default=0.5)
    width = _div(2.0 * band, mean)

    true_range = np.maximum(h, prev_c) - np.minimum(low, np.where(prev_c > 0, prev_c, low))
    atr = _div(ema(np.where(c > 0, true_range, 0.0), 1 / 14), c)

    typical = (h + low + c) / 3.0
    vwap = _div(rolling_sum(typical * v, 20), rolling_sum(v, 20))
    vwap_feat = np.log(_div(c, vwap, default=1.0), where=(c > 0) & (vwap > 0), out=np.zeros_like(c))

    signed = np.sign(move) * v
    obv = _div(rolling_sum(signed, 20), rolling_sum(v, 20))

    out = np.stack([rsi, macd, signal, macd - signal, pctb, width, atr, vwap_feat, obv], axis=-1)
    out[c <= 0] = 0.0
    return out.astype(np.float32)
