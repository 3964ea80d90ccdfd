"""COB heatmap: a time x price-bucket matrix of per-second frames, for models and the dashboard.

Axes. Time: one row per exchange second, the ``window_s`` seconds ending at ``end_ts`` (default:
the newest frame's second), oldest first; a second without a frame is a row of NaN. Price: the
``2 * n_buckets + 1`` absolute price buckets centred on the newest frame's mid bucket (edges at
multiples of the width, see ``ml.market.cob``), lowest first. Each cell takes the frame's value for
that same price bucket (matched by bucket key, not index); a bucket outside that second's own
+-N grid is NaN.

Metrics: ``imbalance`` (bid - ask) / (bid + ask) per bucket; ``volume`` bid + ask USD per bucket;
``spread`` best ask - best bid (USD) per second (a (T,) vector; it has no price axis).
"""
from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ml.market.events import CobFrame

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_S = 300
DEFAULT_HALF_BUCKETS = 10


@dataclass(frozen=True, slots=True)
class Heatmap:
    """Matrices of one window (module docstring). T = window_s, B = 2 * n_buckets + 1.

    ``ts`` (T,) int64 ms; ``price`` (B,) float64 lower bucket edges (USD); ``imbalance`` and
    ``volume`` (T, B) float64 (ratio, USD), NaN where unknown; ``spread`` and ``mid`` (T,) USD.
    """

    symbol: str
    bucket_width: float
    ts: np.ndarray
    price: np.ndarray
    imbalance: np.ndarray
    volume: np.ndarray
    spread: np.ndarray
    mid: np.ndarray


def heatmap_matrix(frames: Sequence[CobFrame], window_s: int = DEFAULT_WINDOW_S,
                   n_buckets: int = DEFAULT_HALF_BUCKETS, end_ts: int | None = None) -> Heatmap:
    """Build the heatmap of ``frames`` (one instrument, any order, same bucket width).

    Raises ValueError if ``frames`` is empty, mixes symbols or widths, or ``window_s`` < 1 /
    ``n_buckets`` < 0.
    """
    if not frames:
        raise ValueError("no frames to build a heatmap from")
    if window_s < 1 or n_buckets < 0:
        raise ValueError(f"window_s must be >= 1 and n_buckets >= 0, got {window_s!r}, {n_buckets!r}")
    width, symbol = frames[0].bucket_width, frames[0].symbol
    if any(f.bucket_width != width or f.symbol != symbol for f in frames):
        raise ValueError("frames must share symbol and bucket width")
    newest = max(frames, key=lambda f: f.ts)
    end = newest.ts if end_ts is None else end_ts - end_ts % 1000
    start = end - (window_s - 1) * 1000
    chosen = [f for f in frames if start <= f.ts <= end]
    center = math.floor(newest.mid / width)
    keys = np.arange(center - n_buckets, center + n_buckets + 1)  # (B,)
    n_rows, n_cols = window_s, len(keys)
    imb = np.full((n_rows, n_cols), np.nan)
    vol = np.full((n_rows, n_cols), np.nan)
    spread, mid = np.full(n_rows, np.nan), np.full(n_rows, np.nan)
    if chosen:
        rows = (np.array([f.ts for f in chosen]) - start) // 1000  # (F,)
        first = np.array([round(f.first_bucket_price / width) for f in chosen])  # (F,)
        frame_imb = np.stack([f.imbalance for f in chosen])  # (F, 2N+1)
        frame_vol = np.stack([f.bid_usd + f.ask_usd for f in chosen])
        src = keys[None, :] - first[:, None]  # (F, B): index in each frame's own grid
        ok = (src >= 0) & (src < frame_imb.shape[1])
        r, c = np.nonzero(ok)
        imb[rows[r], c] = frame_imb[r, src[r, c]]
        vol[rows[r], c] = frame_vol[r, src[r, c]]
        spread[rows] = [f.best_ask - f.best_bid for f in chosen]
        mid[rows] = [f.mid for f in chosen]
    return Heatmap(symbol=symbol, bucket_width=width, ts=start + 1000 * np.arange(n_rows, dtype=np.int64),
                   price=keys * width, imbalance=imb, volume=vol, spread=spread, mid=mid)


class HeatmapCache:
    """The latest ``capacity`` frames of one instrument and the heatmaps built from them.

    :meth:`get` returns the cached matrix while no frame was pushed since it was built for the
    same arguments (the dashboard and the models ask every second, often more than once).
    """

    def __init__(self, capacity: int = DEFAULT_WINDOW_S) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        self.frames: deque[CobFrame] = deque(maxlen=capacity)
        self._cache: dict[tuple[int, int], Heatmap] = {}
        self.builds = 0

    def push(self, frame: CobFrame) -> None:
        """Add the newest frame; drops the cached matrices."""
        self.frames.append(frame)
        self._cache.clear()

    def get(self, window_s: int = DEFAULT_WINDOW_S, n_buckets: int = DEFAULT_HALF_BUCKETS) -> Heatmap:
        """The heatmap of the frames held (ValueError if none)."""
        key = (window_s, n_buckets)
        if key not in self._cache:
            self._cache[key] = heatmap_matrix(list(self.frames), window_s, n_buckets)
            self.builds += 1
        return self._cache[key]
