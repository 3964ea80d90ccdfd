"""The 1 s windows of many consecutive seconds at once, for the backtest's fast path.

``CandleRing.window`` / ``FrameRing.window`` build each second's (300, W) window from the ring's
600 slots (a fancy-indexed copy, then the gap fill). Over a chunk of consecutive seconds those
windows overlap by 299 rows, so :class:`SecondTimeline` keeps the ring's rows as a contiguous
timeline (one row per second, recorded as the ring receives it) and hands out each second's
window as a read-only view of one gap-filled array built once per chunk.

Equal to the ring's window, value for value: a missing row takes the last present row at or
before it *within the ring's capacity window* (``capacity`` rows ending at the second), else
zeros (:func:`ml.features.rings.fill_missing_candles` for candles: a flat candle at that close,
volume 0; ``FrameRing.window`` for frames: a copy of that row). The global fill index ``g`` is
non-decreasing, so the rows whose source lies before the capacity window form a prefix of the
window: it is zeroed in a copy (rare: 300+ missing seconds in a row), the view used otherwise
(rows with no present row at all before them are zeros already, as at the start of a recording).
tests/ml/backtest/test_sliding_windows.py compares every window of the recorded session with the ring's.

Valid while the ring only receives the row of the current second (or later ones), as a replay
without REST backfills does; a row rewritten in the past is not seen.
"""
from __future__ import annotations

import numpy as np

from ml.features.rings import CandleRing, FrameRing, _fill_index


class SecondTimeline:
    """Rows of one 1 s ring (``CandleRing("1s")`` or ``FrameRing``) per second, oldest first.

    Call :meth:`record` once per second after the ring's write of that second; :meth:`build`
    then prepares the windows of the recorded seconds; :meth:`window` returns one (values
    float32 (n, W), present bool (n,)), both read-only, as ``ring.window(ts, n)`` would."""

    def __init__(self, ring: CandleRing | FrameRing) -> None:
        self.ring = ring
        self.candles = isinstance(ring, CandleRing)
        self.capacity = ring.capacity
        self.t0: int | None = None  # time (ms) of rows[0]
        self.rows: list[np.ndarray] = []
        self.present: list[bool] = []
        self._filled = self._present = self._g = None

    def record(self, ts: int) -> None:
        """Copy the ring's rows up to second ``ts`` (ms); the first call also copies the
        ``capacity`` seconds before it (the ring's history at the start)."""
        if self.t0 is None:
            rows, present = self.ring._window(ts - 1000, self.capacity)
            self.t0 = ts - 1000 * self.capacity
            self.rows, self.present = list(rows), present.tolist()
        t = self.t0 + 1000 * len(self.rows)
        ring = self.ring
        while t <= ts:
            slot = (t // 1000) % self.capacity
            here = bool(ring._times[slot] == t)
            self.rows.append(ring._rows[slot].copy() if here else np.zeros(ring._rows.shape[1], np.float32))
            self.present.append(here)
            t += 1000

    def build(self) -> None:
        """Fill the recorded timeline once (module docstring); then :meth:`window` is a view."""
        rows = np.stack(self.rows)  # (N, W) float32
        present = np.asarray(self.present, dtype=bool)  # (N,)
        g = _fill_index(present)
        src = np.maximum(g, 0)
        if self.candles:
            filled = rows.copy()
            missing = ~present
            prev_close = np.where(g >= 0, rows[src, 3], 0.0)
            filled[missing, :4] = prev_close[missing, None]
            filled[missing, 4] = 0.0
        else:
            filled = np.where((g >= 0)[:, None], rows[src], 0.0).astype(np.float32)
        filled.setflags(write=False)
        present.setflags(write=False)
        self._filled, self._present, self._g = filled, present, g

    def window(self, ts: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The window of ``n`` seconds ending at ``ts`` (recorded and built). Raises ValueError
        for a second outside the built timeline."""
        i = (ts - self.t0) // 1000
        lo, start = i - n + 1, i - self.capacity + 1  # first row out; first row of the ring's window
        if start < 0 or i >= len(self._present):
            raise ValueError(f"second {ts} is outside the built timeline")
        values, present = self._filled[lo:i + 1], self._present[lo:i + 1]
        g = self._g[lo:i + 1]
        k = int(np.searchsorted(g, start, side="left"))  # rows filled from before the window
        if k and g[k - 1] >= 0:  # rows without any source before them (g -1) are zeros already
            values = values.copy()
            values[:k] = 0.0
            values.setflags(write=False)
        return values, present

    def trim(self) -> None:
        """Forget all but the last ``capacity`` rows (the history the next chunk's windows need)."""
        drop = max(0, len(self.rows) - self.capacity)
        self.rows, self.present = self.rows[drop:], self.present[drop:]
        self.t0 += 1000 * drop
        self._filled = self._present = self._g = None
