"""Supervised candle samples (1m/1h/1d windows), identical to the live inputs; the look-ahead
check's training-window builder (``ml.backtest.lookahead_training``) uses them.

A sample is taken at the close of each 1m candle ``t`` (open time ``t``, closes ``t + 60 s``),
which is the live instant ``ts = t + 59 s`` of :func:`ml.features.base_input.build_base_data_input`:

- inputs: 300 x 1m candles ending with candle ``t``; 300 x 1h and 300 x 1d candles fully
  closed by ``t + 60 s``; each normalized by :mod:`ml.features.normalize` exactly as live.
  History is put on a regular grid first and gaps are filled as the rings fill them.
- label: the next ``horizon`` minutes' return ``r = close[t + h] / close[t] - 1`` (1m closes);
  BUY if ``r > threshold``, SELL if ``r < -threshold``, else HOLD. The default threshold is a
  round trip of Binance spot taker fees, ``2 x 0.1% = 0.2%``: a move a market-order trade
  could profit from. The label only uses candles ``t+1 .. t+h``, strictly after the inputs.

Windows are cut with ``numpy.lib.stride_tricks.sliding_window_view`` (no copies until the
normalization), and each distinct 1h / 1d window is normalized once and shared by index.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ml.features.base_input import WINDOW
from ml.features.groups import CandleGrid
from ml.features.normalize import normalize_candles
from ml.features.rings import TIMEFRAME_MS
from ml.models.output import ACTIONS

logger = logging.getLogger(__name__)

TAKER_FEE = 0.001  # Binance spot taker fee, fraction per side
BUY, SELL, HOLD = (ACTIONS.index(a) for a in ("BUY", "SELL", "HOLD"))
HISTORY_COMPONENTS = {"primary_1m": "1m", "primary_1h": "1h", "primary_1d": "1d"}
MINUTE_MS = TIMEFRAME_MS["1m"]
_CHUNK = 2048  # windows normalized at a time


def label_returns(returns: np.ndarray, threshold: float) -> np.ndarray:
    """Class index per return (ACTIONS order): BUY if r > threshold, SELL if r < -threshold,
    else HOLD. ``returns`` and the result have the same shape; result int64."""
    labels = np.full(returns.shape, HOLD, dtype=np.int64)
    labels[returns > threshold] = BUY
    labels[returns < -threshold] = SELL
    return labels


@dataclass
class CandleDataset:
    """Samples in time order (N of them).

    Attributes:
        times: int64 (N,) open time (ms) of the 1m candle ``t`` each sample is taken at.
        returns: float64 (N,) ``close[t+h] / close[t] - 1``.
        labels: int64 (N,) ACTIONS index.
        windows: component -> float32 (U, 300, 5) distinct normalized windows.
        index: component -> int64 (N,) row of ``windows`` used by each sample.
        last_open: component -> int64 (N,) open time (ms) of each sample's newest input candle.
        horizon_min: label horizon (minutes); threshold: label threshold (fraction).
    """

    times: np.ndarray
    returns: np.ndarray
    labels: np.ndarray
    windows: dict[str, np.ndarray]
    index: dict[str, np.ndarray]
    last_open: dict[str, np.ndarray]
    horizon_min: int
    threshold: float

    def __len__(self) -> int:
        return len(self.times)

    def batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Model input for samples ``idx``: component -> float32 tensor (B, 300, 5)."""
        return {name: torch.from_numpy(self.windows[name][self.index[name][idx]])
                for name in self.windows}

    def subset(self, idx: np.ndarray) -> CandleDataset:
        """Samples ``idx`` (windows shared, not copied)."""
        return CandleDataset(
            times=self.times[idx], returns=self.returns[idx], labels=self.labels[idx],
            windows=self.windows, index={k: v[idx] for k, v in self.index.items()},
            last_open={k: v[idx] for k, v in self.last_open.items()},
            horizon_min=self.horizon_min, threshold=self.threshold)


def make_dataset(history: dict[str, pd.DataFrame], *, start_ms: int, end_ms: int,
                 horizon_min: int = 5, fee: float = TAKER_FEE, threshold: float | None = None,
                 components: tuple[str, ...] = tuple(HISTORY_COMPONENTS),
                 min_completeness: float = 0.9) -> CandleDataset:
    """Build every sample with 1m candle ``t`` in ``[start_ms, end_ms)`` (see module docstring).

    A sample is kept only if all its data lies in the history and before ``end_ms``
    (``t + (h+1) min <= end_ms``, so the label's last candle has closed by ``end_ms``), both
    label candles are real (not gap-filled), and each input window has at least
    ``min_completeness`` of its rows present (the retired candle-only models required it).

    Args:
        history: timeframe ("1m", "1h", "1d") -> frame from ml.data.history.load_ohlcv_csv.
        start_ms, end_ms: ms since epoch, UTC.
        fee: taker fee per side; threshold defaults to ``2 * fee``.
        components: subset of primary_1m, primary_1h, primary_1d.

    Raises:
        ValueError: an unsupported component, a missing timeframe, or no sample in the range.
    """
    unsupported = [c for c in components if c not in HISTORY_COMPONENTS]
    if unsupported:
        raise ValueError(f"no history to train components {unsupported}; "
                         f"supported: {list(HISTORY_COMPONENTS)}")
    threshold = 2.0 * fee if threshold is None else threshold
    grids = {tf: CandleGrid.from_frame(history[tf], tf)
             for tf in {"1m", *(HISTORY_COMPONENTS[c] for c in components)}}
    m = grids["1m"]
    t = m.start + MINUTE_MS * np.arange(len(m), dtype=np.int64)  # (G,) candidate open times
    t = t[(t >= start_ms) & (t + (horizon_min + 1) * MINUTE_MS <= end_ms)]
    i_now, i_fut = m.pos(t), m.pos(t) + horizon_min
    keep = (i_fut < len(m))
    keep[keep] &= m.present[i_now[keep]] & m.present[i_fut[keep]]

    last_open: dict[str, np.ndarray] = {}
    for name in components:
        g = grids[HISTORY_COMPONENTS[name]]
        lo = (t + MINUTE_MS) // g.period * g.period - g.period  # last candle closed by t + 1 min
        end_pos = g.pos(lo)
        ok = (end_pos - (WINDOW - 1) >= 0) & (end_pos < len(g))
        counts = np.concatenate([[0], np.cumsum(g.present)])
        safe = np.clip(end_pos, WINDOW - 1, len(g) - 1)
        ok &= (counts[safe + 1] - counts[safe + 1 - WINDOW]) >= min_completeness * WINDOW
        keep &= ok
        last_open[name] = lo
    if not keep.any():
        raise ValueError(f"no sample with full windows in [{start_ms}, {end_ms})")

    t, i_now, i_fut = t[keep], i_now[keep], i_fut[keep]
    returns = m.close[i_fut] / m.close[i_now] - 1.0  # float64: labels from the exact prices
    windows: dict[str, np.ndarray] = {}
    index: dict[str, np.ndarray] = {}
    for name in components:
        g = grids[HISTORY_COMPONENTS[name]]
        last_open[name] = last_open[name][keep]
        end_pos = g.pos(last_open[name])
        unique_end, index[name] = np.unique(end_pos, return_inverse=True)
        view = sliding_window_view(g.rows, (WINDOW, 5))[:, 0]  # (G-299, 300, 5), no copy
        starts = unique_end - (WINDOW - 1)
        windows[name] = np.concatenate([  # (U, 300, 5); chunks keep float64 temporaries small
            normalize_candles(view[starts[lo:lo + _CHUNK]]) for lo in range(0, len(starts), _CHUNK)])
    labels = label_returns(returns, threshold)
    logger.info("dataset: %d samples %d..%d, labels %s", len(t), t[0], t[-1],
                np.bincount(labels, minlength=len(ACTIONS)).tolist())
    return CandleDataset(times=t, returns=returns, labels=labels, windows=windows, index=index,
                         last_open=last_open, horizon_min=horizon_min, threshold=threshold)
