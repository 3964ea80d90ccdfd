"""In-memory ring buffers of the latest candles and COB frames (the inference hot path).

Inference reads the last 300 rows of each timeframe every exchange second, so the rows live in
fixed numpy arrays, never in the database. Each ring is indexed by its time grid:
``slot = (open_time // period) % capacity``, and a slot only counts for a requested time if the
time stored in it is exactly that time. A newer row evicts the row ``capacity`` periods older.

Windows are aligned to the grid and returned oldest first with a ``present`` mask. A row with no
data is filled and marked not present:

- candles: a flat candle at the previous present close with zero volume (what Binance returns
  for an interval without trades, and how the recorded 1s candles were filled);
- COB frames: a copy of the previous present frame (the book did not change as far as we know);
- a missing row with no present row before it in the whole ring: zeros.

The fill looks back through the whole ring (not only the window), so a window starting in a
gap gets the same values as the same window cut from the gap-filled history in ml/training, as
long as the ring still holds the last row before the gap.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

from ml.market.events import Candle, CobFrame

logger = logging.getLogger(__name__)

TIMEFRAME_MS = {"1s": 1_000, "1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}
CANDLE_FIELDS = ("open", "high", "low", "close", "volume")
COB_MA_KEYS = ("1s", "5s", "15s", "60s")
_EMPTY = np.iinfo(np.int64).min  # time stored in a never-written slot


def cob_width(n_buckets: int) -> int:
    """Columns of one COB row: bid_usd (2N+1) | ask_usd (2N+1) | imbalance_5 + 4 MAs."""
    return 2 * (2 * n_buckets + 1) + 1 + len(COB_MA_KEYS)


class _TimeRing:
    """Fixed-capacity rows of ``width`` float32 values keyed by grid-aligned times (ms)."""

    def __init__(self, period_ms: int, width: int, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.period_ms = period_ms
        self.capacity = capacity
        self._times = np.full(capacity, _EMPTY, dtype=np.int64)
        self._rows = np.zeros((capacity, width), dtype=np.float32)
        self.version = 0  # bumped by every write; keys the window memo of CandleRing

    def __len__(self) -> int:
        return int((self._times != _EMPTY).sum())

    @property
    def last_time(self) -> int | None:
        """Newest stored time (ms), None when empty."""
        return None if len(self) == 0 else int(self._times.max())

    def _check_aligned(self, t: int, what: str) -> None:
        if t % self.period_ms:
            raise ValueError(f"{what}={t} is not aligned to the {self.period_ms} ms grid")

    def _put(self, t: int, row: np.ndarray) -> None:
        self._check_aligned(t, "time")
        slot = (t // self.period_ms) % self.capacity
        if self._times[slot] > t:  # an older row arriving after its slot was reused
            logger.debug("ring: dropped row at %d older than slot time %d", t, self._times[slot])
            return
        self._times[slot] = t
        self._rows[slot] = row
        self.version += 1

    def _window(self, last_time: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw rows (capacity, width) and present (capacity,) for the ``capacity`` grid times
        ending at last_time; callers fill gaps, then keep the last n rows."""
        if not 1 <= n <= self.capacity:
            raise ValueError(f"window n={n} must be in 1..capacity={self.capacity}")
        self._check_aligned(last_time, "last time")
        grid = last_time - self.period_ms * np.arange(self.capacity - 1, -1, -1, dtype=np.int64)
        slots = (grid // self.period_ms) % self.capacity
        present = self._times[slots] == grid  # (capacity,)
        rows = self._rows[slots]  # a float32 copy (fancy indexing)
        rows[~present] = 0.0
        return rows, present


def _fill_index(present: np.ndarray) -> np.ndarray:
    """Index of the last present row at or before each row (-1 when there is none), shape (n,)."""
    idx = np.where(present, np.arange(len(present)), -1)
    return np.maximum.accumulate(idx)


def fill_missing_candles(rows: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Fill rows (T, 5) where ``present`` (T,) is False with a flat candle at the previous
    present close and volume 0; zeros where no present row precedes. Returns a new float32 array.
    """
    rows = np.array(rows, dtype=np.float32)
    src = _fill_index(present)
    prev_close = np.where(src >= 0, rows[np.maximum(src, 0), 3], 0.0)  # (T,)
    missing = ~present
    rows[missing, :4] = prev_close[missing, None]
    rows[missing, 4] = 0.0
    return rows


class CandleRing(_TimeRing):
    """Latest candles of one timeframe; rows [open, high, low, close, volume].

    Prices in quote currency (USD), volume in base units.
    """

    def __init__(self, timeframe: str, capacity: int = 600) -> None:
        if timeframe not in TIMEFRAME_MS:
            raise ValueError(
                f"unknown timeframe {timeframe!r}; expected one of {list(TIMEFRAME_MS)}")
        super().__init__(TIMEFRAME_MS[timeframe], len(CANDLE_FIELDS), capacity)
        self.timeframe = timeframe
        self._memo: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._memo_version = 0

    def upsert(self, candle: Candle) -> None:
        """Insert a candle, replacing any with the same ``open_time`` (e.g. a still-open candle).

        Raises:
            ValueError: the candle's timeframe differs or its open_time is off the grid.
        """
        if candle.timeframe != self.timeframe:
            raise ValueError(f"candle timeframe {candle.timeframe!r} != ring {self.timeframe!r}")
        row = (candle.open, candle.high, candle.low, candle.close, candle.volume)
        self._put(candle.open_time, np.asarray(row, dtype=np.float32))

    def extend(self, candles: Iterable[Candle]) -> None:
        """Upsert candles in order."""
        for candle in candles:
            self.upsert(candle)

    def window(self, last_open_time: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
        """Candles with open times ``last_open_time - (n-1)*period .. last_open_time``.

        Returns:
            values: float32 (n, 5) [open, high, low, close, volume], oldest first; missing rows
                are flat candles at the previous present close with volume 0 (zeros if no earlier
                row is in the ring).
            present: bool (n,), True where a candle was stored for that open time.

        Raises:
            ValueError: n outside 1..capacity or last_open_time off the timeframe grid.
        """
        # 1m/1h/1d windows change once a period but are read every second: each (end, n) is built
        # once per ring version (any write clears the memo) and callers get copies to modify.
        if self._memo_version != self.version:
            self._memo.clear()
            self._memo_version = self.version
        hit = self._memo.get((last_open_time, n))
        if hit is None:
            if len(self._memo) >= 8:  # a few shapes per second are read (e.g. 300 rows and 1 row)
                self._memo.clear()
            rows, present = self._window(last_open_time, n)
            hit = self._memo[(last_open_time, n)] = (fill_missing_candles(rows, present)[-n:], present[-n:].copy())
        return hit[0].copy(), hit[1].copy()


class FrameRing(_TimeRing):
    """Latest CobFrames keyed by ``ts`` (ms, start of the exchange second)."""

    def __init__(self, capacity: int = 600, n_buckets: int = 20) -> None:
        super().__init__(TIMEFRAME_MS["1s"], cob_width(n_buckets), capacity)
        self.n_buckets = n_buckets

    def upsert(self, frame: CobFrame) -> None:
        """Insert a frame, replacing any with the same ``ts``.

        Raises:
            ValueError: bucket arrays are not (2N+1,), an MA key is missing, or ts is off the grid.
        """
        n_rows = 2 * self.n_buckets + 1
        bid = np.asarray(frame.bid_usd, dtype=np.float32)
        ask = np.asarray(frame.ask_usd, dtype=np.float32)
        if bid.shape != (n_rows,) or ask.shape != (n_rows,):
            raise ValueError(f"CobFrame bid_usd/ask_usd shapes {bid.shape}/{ask.shape}, "
                             f"expected ({n_rows},)")
        missing = [k for k in COB_MA_KEYS if k not in frame.imbalance_ma]
        if missing:
            raise ValueError(f"CobFrame.imbalance_ma lacks keys {missing}")
        tail = [frame.imbalance_5] + [frame.imbalance_ma[k] for k in COB_MA_KEYS]
        self._put(frame.ts, np.concatenate([bid, ask, np.asarray(tail, dtype=np.float32)]))

    def extend(self, frames: Iterable[CobFrame]) -> None:
        """Upsert frames in order."""
        for frame in frames:
            self.upsert(frame)

    def window(self, last_ts: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
        """Frames for seconds ``last_ts - (n-1)*1000 .. last_ts``.

        Returns:
            values: float32 (n, 2*(2N+1)+5) [bid_usd | ask_usd | imbalance_5, ma_1s, ma_5s,
                ma_15s, ma_60s], oldest first; missing rows copy the previous present row in
                the ring (zeros if none).
            present: bool (n,).

        Raises:
            ValueError: n outside 1..capacity or last_ts not a whole second.
        """
        rows, present = self._window(last_ts, n)
        src = _fill_index(present)
        filled = np.where((src >= 0)[:, None], rows[np.maximum(src, 0)], 0.0)
        return filled[-n:].astype(np.float32), present[-n:].copy()
