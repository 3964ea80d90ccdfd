"""Model input groups: the whole BaseDataInput cut into named, masked groups.

Every model family reads the same groups (``ml/models/market.py``). A group is one modality with
one presence flag per sample; a group that is missing for a sample (no COB before the order-book
recordings, no 1 s candles in the 1m history, a venue down) has ``mask = False`` and zero values,
and the models replace its embedding with a learned "missing" embedding: it is never read as data.

=============  ============  ========================================  ==========================
group          shape         source (BaseDataInput)                    units / normalization
=============  ============  ========================================  ==========================
eth_1s         (60, 5)       primary_1s, last 60 rows                  normalize_candles
eth_1m         (60, 5)       primary_1m, last 60 rows                  normalize_candles
eth_1h         (48, 5)       primary_1h, last 48 rows                  normalize_candles
eth_1d         (30, 5)       primary_1d, last 30 rows                  normalize_candles
btc_1s         (60, 5)       reference_1s, last 60 rows                normalize_candles
btc_1m         (60, 5)       reference_1m (optional), last 60 rows     normalize_candles
cob_levels     (30, 82)      cob bid_usd | ask_usd, last 30 rows       log1p(usd)/log1p(total)
cob_imbalance  (60, 5)       cob imbalance_5, MA 1s/5s/15s/60s         [-1, 1]
ind_{tf}       (9,)          indicators[primary_{tf}] newest row       unitless (indicators.py)
piv_{tf}       (20,)         pivots[primary_{tf}], L1-5                normalize_pivots, flat
=============  ============  ========================================  ==========================

(``tf`` in 1s, 1m, 1h, 1d.) Cross-model groups are added by the cascade in
``ml/models/market.py``: ``upstream`` (the probabilities and edges of the models that run
before, in the same second) and ``cnn_hidden`` (the CNN's hidden state, read by the DQN).

A sequence group is present when at least ``MIN_PRESENT`` of its rows are real (not gap-filled);
an indicator or pivot group when its candle component's 300-row window is.

:func:`input_groups` builds the groups of one live BaseDataInput; :func:`history_samples` builds
them for every minute of a candle history exactly as the live instant ``ts = t + 59 s`` after the
1m candle ``t`` would (same windows, same normalization, indicators and pivots computed on the
same 300-row windows), so training samples equal live inputs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ml.features.base_input import PIVOT_LEVELS, WINDOW, BaseDataInput
from ml.features.indicators import INDICATOR_NAMES, indicators
from ml.features.normalize import normalize_candles, normalize_cob, normalize_pivots
from ml.features.rings import TIMEFRAME_MS, fill_missing_candles

logger = logging.getLogger(__name__)

MIN_PRESENT = 0.9
N_IND = len(INDICATOR_NAMES)
N_PIV = PIVOT_LEVELS * 4
COB_LEVEL_COLUMNS = 82  # 2 x 41 buckets
TIMEFRAMES = ("1s", "1m", "1h", "1d")

# sequence group -> (BaseDataInput component, rows read, column slice of the normalized component)
SEQUENCE_GROUPS: dict[str, tuple[str, int, slice]] = {
    "eth_1s": ("primary_1s", 60, slice(0, 5)),
    "eth_1m": ("primary_1m", 60, slice(0, 5)),
    "eth_1h": ("primary_1h", 48, slice(0, 5)),
    "eth_1d": ("primary_1d", 30, slice(0, 5)),
    "btc_1s": ("reference_1s", 60, slice(0, 5)),
    "btc_1m": ("reference_1m", 60, slice(0, 5)),
    "cob_levels": ("cob", 30, slice(0, COB_LEVEL_COLUMNS)),
    "cob_imbalance": ("cob", 60, slice(COB_LEVEL_COLUMNS, COB_LEVEL_COLUMNS + 5)),
}
VECTOR_GROUPS: dict[str, tuple[str, int]] = {
    **{f"ind_{tf}": (f"primary_{tf}", N_IND) for tf in TIMEFRAMES},
    **{f"piv_{tf}": (f"primary_{tf}", N_PIV) for tf in TIMEFRAMES},
}
GROUP_SHAPES: dict[str, tuple[int, ...]] = {
    **{g: (rows, cols.stop - cols.start) for g, (_, rows, cols) in SEQUENCE_GROUPS.items()},
    **{g: (width,) for g, (_, width) in VECTOR_GROUPS.items()},
}
INPUT_GROUPS = tuple(GROUP_SHAPES)


@dataclass
class SampleSet:
    """Samples in time order (N of them), groups stored once per distinct value.

    Attributes:
        times: int64 (N,) live instant of each sample (ms): the start of the second at whose end
            the input is complete (1m candle open + 59 s for history samples).
        values: group -> float32 (U_g, *GROUP_SHAPES[g]) distinct rows.
        index: group -> int64 (N,) row of ``values`` per sample.
        mask: group -> bool (N,) the group is real data for that sample.
        close: float64 (N,) price at the sample's instant (USD): the close of its newest 1m candle.
        returns: horizon (minutes) -> float64 (N,) ``close[t + h] / close[t] - 1``, NaN where the
            future close is unknown (after the end of the data or a gap).
        extra: cross-model groups added later (name -> float32 (N, D)), always present.
    """

    times: np.ndarray
    values: dict[str, np.ndarray]
    index: dict[str, np.ndarray]
    mask: dict[str, np.ndarray]
    close: np.ndarray
    returns: dict[int, np.ndarray]
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)

    def subset(self, idx: np.ndarray) -> SampleSet:
        """Samples ``idx`` (distinct rows shared, not copied)."""
        return SampleSet(times=self.times[idx], values=self.values,
                         index={g: i[idx] for g, i in self.index.items()},
                         mask={g: m[idx] for g, m in self.mask.items()}, close=self.close[idx],
                         returns={h: r[idx] for h, r in self.returns.items()},
                         extra={g: v[idx] for g, v in self.extra.items()})

    def with_extra(self, **extra: np.ndarray) -> SampleSet:
        """A copy with cross-model groups added (each float32 (N, D))."""
        for name, arr in extra.items():
            if len(arr) != len(self):
                raise ValueError(f"extra group {name!r} has {len(arr)} rows, expected {len(self)}")
        out = self.subset(np.arange(len(self)))
        out.extra = {**self.extra, **{k: np.asarray(v, dtype=np.float32) for k, v in extra.items()}}
        return out

    def batch(self, idx: np.ndarray, groups: tuple[str, ...], device: torch.device | None = None,
              permute: dict[str, np.ndarray] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Model input of samples ``idx``: (group -> float32 (B, *shape), group -> bool (B,)).

        ``permute`` maps a group to a permutation of ``range(N)`` applied to that group's rows
        (values and mask together): permutation importance."""
        x, m = {}, {}
        for g in groups:
            rows = idx if not permute or g not in permute else permute[g][idx]
            if g in self.extra:
                x[g] = torch.from_numpy(self.extra[g][rows])
                m[g] = torch.ones(len(rows), dtype=torch.bool)
                continue
            x[g] = torch.from_numpy(self.values[g][self.index[g][rows]])
            m[g] = torch.from_numpy(self.mask[g][rows])
        if device is not None and device.type != "cpu":
            x = {k: v.to(device) for k, v in x.items()}
            m = {k: v.to(device) for k, v in m.items()}
        return x, m

    def coverage(self) -> dict[str, float]:
        """Share of samples in which each group is present, in [0, 1]."""
        return {g: float(np.mean(self.mask[g])) if len(self) else 0.0 for g in self.mask}


def _missing(n: int, group: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros((1, *GROUP_SHAPES[group]), np.float32), np.zeros(n, np.int64), np.zeros(n, bool)


def _present_enough(present: np.ndarray) -> bool:
    return bool(present.size) and float(np.mean(present)) >= MIN_PRESENT


def input_groups(inputs: BaseDataInput) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """The groups of one live BaseDataInput: (group -> float32 GROUP_SHAPES[g], group -> present).

    A component absent from the input (``reference_1m`` is optional) gives a missing group.
    Indicators and pivots come from the input's own 300-row windows (``inputs.indicators``,
    ``inputs.pivots``), so they equal :func:`history_samples`."""
    values: dict[str, np.ndarray] = {}
    mask: dict[str, bool] = {}
    for g, (component, rows, cols) in SEQUENCE_GROUPS.items():
        arr = inputs.components.get(component)
        present = inputs.present.get(component)
        if arr is None or present is None:
            values[g], mask[g] = np.zeros(GROUP_SHAPES[g], np.float32), False
            continue
        tail = arr[-rows:]
        norm = normalize_cob(tail) if component == "cob" else normalize_candles(tail)
        values[g] = np.ascontiguousarray(norm[:, cols], dtype=np.float32)
        mask[g] = _present_enough(present[-rows:])
    for tf in TIMEFRAMES:
        component = f"primary_{tf}"
        whole = _present_enough(inputs.present.get(component, np.zeros(0, bool)))
        ind = inputs.indicators.get(component)
        piv = inputs.pivots.get(component)
        ok_ind = whole and ind is not None
        ok_piv = whole and piv is not None
        values[f"ind_{tf}"] = ind[-1].astype(np.float32) if ok_ind else np.zeros(N_IND, np.float32)
        mask[f"ind_{tf}"] = ok_ind
        if ok_piv:
            last_close = float(inputs.components[component][-1, 3])
            values[f"piv_{tf}"] = normalize_pivots(np.asarray(piv, np.float64), last_close).reshape(-1)
        else:
            values[f"piv_{tf}"] = np.zeros(N_PIV, np.float32)
        mask[f"piv_{tf}"] = ok_piv
    return values, mask


def sample_set_from_inputs(items: list[BaseDataInput], close: np.ndarray | None = None) -> SampleSet:
    """A SampleSet of live inputs (one row per input, nothing shared); returns are empty."""
    n = len(items)
    values = {g: np.zeros((n, *GROUP_SHAPES[g]), np.float32) for g in INPUT_GROUPS}
    mask = {g: np.zeros(n, bool) for g in INPUT_GROUPS}
    for i, item in enumerate(items):
        v, m = input_groups(item)
        for g in INPUT_GROUPS:
            values[g][i], mask[g][i] = v[g], m[g]
    return SampleSet(times=np.array([x.ts for x in items], np.int64), values=values,
                     index={g: np.arange(n, dtype=np.int64) for g in INPUT_GROUPS}, mask=mask,
                     close=np.zeros(n) if close is None else np.asarray(close, np.float64), returns={})


@dataclass
class CandleGrid:
    """One timeframe of a symbol on a regular grid: gap-filled float32 rows (G, 5), presence (G,)
    and the exact float64 closes (NaN where missing)."""

    start: int
    period: int
    rows: np.ndarray
    present: np.ndarray
    close: np.ndarray

    @classmethod
    def from_frame(cls, df: pd.DataFrame, timeframe: str) -> CandleGrid:
        period = TIMEFRAME_MS[timeframe]
        times = df["open_time"].to_numpy(dtype=np.int64)
        if len(times) == 0 or (times % period).any():
            raise ValueError(f"{timeframe} history is empty or off the {period} ms grid")
        pos = (times - times[0]) // period
        present = np.zeros(int(pos[-1]) + 1, dtype=bool)
        present[pos] = True
        rows = np.zeros((len(present), 5), dtype=np.float32)
        rows[pos] = df[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float32)
        close = np.full(len(present), np.nan)
        close[pos] = df["close"].to_numpy(dtype=np.float64)
        return cls(int(times[0]), period, fill_missing_candles(rows, present), present, close)

    def pos(self, open_time: np.ndarray) -> np.ndarray:
        """Grid row of each open time (unchecked: may fall outside the grid)."""
        return (open_time - self.start) // self.period

    def __len__(self) -> int:
        return len(self.present)

    def positions(self, open_times: np.ndarray) -> np.ndarray:
        """Grid row of each open time; -1 where outside the grid."""
        pos = (open_times - self.start) // self.period
        return np.where((pos >= 0) & (pos < len(self.present)), pos, -1)


def _windows_with_derived(grid: CandleGrid, end_pos: np.ndarray, rows: int, chunk: int = 2048
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each distinct end position (>= WINDOW - 1): the normalized last ``rows`` rows
    (U, rows, 5), the newest indicator row (U, 9) and normalized pivots (U, 20) of the 300-row
    window, and whether the window and the tail are complete enough: (U,) bool each."""
    from ml.pivots import williams_pivots

    view = sliding_window_view(grid.rows, (WINDOW, 5))[:, 0]  # (G-299, 300, 5), no copy
    counts = np.concatenate([[0], np.cumsum(grid.present)])
    tail_ok = (counts[end_pos + 1] - counts[end_pos + 1 - rows]) >= MIN_PRESENT * rows
    whole_ok = (counts[end_pos + 1] - counts[end_pos + 1 - WINDOW]) >= MIN_PRESENT * WINDOW
    seq = np.zeros((len(end_pos), rows, 5), np.float32)
    ind = np.zeros((len(end_pos), N_IND), np.float32)
    piv = np.zeros((len(end_pos), N_PIV), np.float32)
    for lo in range(0, len(end_pos), chunk):
        win = view[end_pos[lo:lo + chunk] - (WINDOW - 1)]  # (C, 300, 5)
        seq[lo:lo + chunk] = normalize_candles(win[:, -rows:])
        ind[lo:lo + chunk] = indicators(np.ascontiguousarray(win))[:, -1]
        for j, w in enumerate(win):
            try:
                levels = williams_pivots(w[:, 1], w[:, 2], levels=PIVOT_LEVELS).support_resistance()
            except ValueError:
                levels = np.full((PIVOT_LEVELS, 2), np.nan)
            piv[lo + j] = normalize_pivots(levels, float(w[-1, 3])).reshape(-1)
    return seq, ind, piv, np.stack([tail_ok, whole_ok])


def history_samples(primary: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame] | None, *,
                    start_ms: int, end_ms: int, stride_min: int = 1,
                    horizons_min: tuple[int, ...] = (1, 5, 15, 60)) -> SampleSet:
    """Samples at every ``stride_min``-th 1m candle ``t`` with open time in [start_ms, end_ms).

    Args:
        primary: traded instrument, timeframe ("1m", "1h", "1d") -> canonical candle frame
            (ml.data.history). "1m" is required; "1h"/"1d" give their groups when present.
        reference: reference instrument frames (its "1m" gives ``btc_1m``), or None.
        start_ms, end_ms: ms since epoch, UTC. No candle opening at or after ``end_ms`` is read
            by any input; returns may look past ``end_ms`` (callers purge them, see
            ml/evaluation/walk_forward.py).

    A sample is kept when its 1m candle ``t`` is real and the ``eth_1m`` tail is complete;
    every other group is masked where its data is missing or incomplete. The 1 s and COB groups
    are always masked here (candle history has none).

    Raises:
        ValueError: no "1m" frame, or no sample in the range.
    """
    if "1m" not in primary:
        raise ValueError("history_samples needs the primary 1m candles")
    minute = TIMEFRAME_MS["1m"]
    m = CandleGrid.from_frame(primary["1m"], "1m")
    t = m.start + minute * np.arange(len(m.present), dtype=np.int64)
    t = t[(t >= start_ms) & (t + minute <= end_ms) & ((t - m.start) // minute % stride_min == 0)]
    pos = m.positions(t)
    keep = (pos >= WINDOW - 1) & (pos >= 0)
    keep[keep] &= m.present[pos[keep]]
    t, pos = t[keep], pos[keep]
    if not len(t):
        raise ValueError(f"no sample with a full 1m window in [{start_ms}, {end_ms})")
    n = len(t)
    values: dict[str, np.ndarray] = {}
    index: dict[str, np.ndarray] = {}
    mask: dict[str, np.ndarray] = {}

    def candle_groups(grid: CandleGrid, positions: np.ndarray, seq_group: str, rows: int,
                      tf: str | None) -> None:
        ok = positions >= WINDOW - 1
        uniq, inv = np.unique(np.where(ok, positions, WINDOW - 1), return_inverse=True)
        seq, ind, piv, flags = _windows_with_derived(grid, uniq, rows)
        values[seq_group], index[seq_group] = seq, inv.reshape(-1)
        mask[seq_group] = ok & flags[0][inv]
        if tf is not None:
            for g, arr in ((f"ind_{tf}", ind), (f"piv_{tf}", piv)):
                values[g], index[g] = arr, inv.reshape(-1)
                mask[g] = ok & flags[1][inv]

    candle_groups(m, pos, "eth_1m", SEQUENCE_GROUPS["eth_1m"][1], "1m")
    keep = mask["eth_1m"].copy()
    for tf in ("1h", "1d"):
        group = f"eth_{tf}"
        if tf in primary:
            g = CandleGrid.from_frame(primary[tf], tf)
            last_open = (t + minute) // g.period * g.period - g.period  # closed by t + 1 min
            candle_groups(g, g.positions(last_open), group, SEQUENCE_GROUPS[group][1], tf)
        else:
            for name in (group, f"ind_{tf}", f"piv_{tf}"):
                values[name], index[name], mask[name] = _missing(n, name)
    if reference is not None and "1m" in reference:
        g = CandleGrid.from_frame(reference["1m"], "1m")
        p = g.positions(t)
        candle_groups(g, p, "btc_1m", SEQUENCE_GROUPS["btc_1m"][1], None)
        mask["btc_1m"] &= np.where(p >= 0, g.present[np.maximum(p, 0)], False)
    else:
        values["btc_1m"], index["btc_1m"], mask["btc_1m"] = _missing(n, "btc_1m")
    for name in ("eth_1s", "btc_1s", "cob_levels", "cob_imbalance", "ind_1s", "piv_1s"):
        values[name], index[name], mask[name] = _missing(n, name)

    sel = np.flatnonzero(keep)
    close = m.close[pos]
    returns = {}
    for h in horizons_min:
        fut = pos + h
        ok = fut < len(m.close)
        r = np.full(n, np.nan)
        r[ok] = m.close[fut[ok]] / close[ok] - 1.0
        returns[int(h)] = r
    out = SampleSet(times=t + minute - 1000, values=values, index=index, mask=mask, close=close,
                    returns=returns)
    out = out.subset(sel)
    logger.info("history samples: %d from %d to %d, coverage %s", len(out), out.times[0], out.times[-1],
                {g: round(c, 3) for g, c in out.coverage().items()})
    return out
