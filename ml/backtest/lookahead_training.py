"""The training-window look-ahead check: a training set built from candle history must not use,
for a sample, any candle after the instant the sample stands for (its features) or after its label
horizon (its label).

For each cut time T (ms), the history is rebuilt as it was known at T (:func:`history_as_of`):
candles closed by T unchanged, candles closing in (T, T + ``keep_after_ms``] kept but altered (each
bar's prices scaled by its own seeded random factor, volume too), later ones removed. Keeping the
altered bars keeps the samples whose label horizon straddles T in the rebuilt set, so a feature
that reads the label's future close shows up; removing the rest checks that nothing reads far
ahead (e.g. statistics of the whole history). Then, against the build from the full history:

- every sample with input time <= T has the same features (max abs difference 0);
- every sample with label time <= T is present and has the same labels;
- no sample with input time <= T appears that the full build does not have.

Any difference is a ``training_window`` :class:`~ml.backtest.lookahead.Leak` (one per cut and
feature or label, with the first differing sample time and the largest difference).

A builder is any ``build(history) -> TrainingSamples`` (history: timeframe -> frame with the
columns of ``ml.data.history.load_ohlcv_csv``); :func:`candle_dataset_builder` adapts
``ml.training.dataset.make_dataset``.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.backtest.lookahead import TRAINING_WINDOW, Leak, cut_points
from ml.features.rings import TIMEFRAME_MS

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close")
DAY_MS = 86_400_000
_CHUNK = 4096  # samples compared at a time


class IndexedRows:
    """Rows shared by several samples, as ``make_dataset`` keeps its windows: sample i's features
    are ``rows[index[i]]``. ``self[idx]`` gives (len(idx), ...) like an array would."""

    def __init__(self, rows: np.ndarray, index: np.ndarray) -> None:
        self.rows, self.index = rows, np.asarray(index)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        return self.rows[self.index[idx]]


@dataclass
class TrainingSamples:
    """What a training-set builder returns (N samples, any order).

    Attributes:
        times: int64 (N,) input time (ms since epoch): the instant at which all of the sample's
            inputs are known (for ``make_dataset``: the close of its 1m candle). Also the sample's key.
        label_times: int64 (N,) the instant (ms) at which all the data of its labels is known, or
            label name -> int64 (N,) when labels of several horizons become known at different times.
        features: name -> (N, ...) array or :class:`IndexedRows`.
        labels: name -> (N,) array (class index, return, ...).
    """

    times: np.ndarray
    label_times: np.ndarray | Mapping[str, np.ndarray]
    features: Mapping[str, np.ndarray | IndexedRows]
    labels: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.int64)
        if isinstance(self.label_times, Mapping):
            self.label_times = {k: np.asarray(v, dtype=np.int64) for k, v in self.label_times.items()}
            missing = set(self.labels) - set(self.label_times)
            if missing:
                raise ValueError(f"label_times lacks labels {sorted(missing)}")
        else:
            self.label_times = np.asarray(self.label_times, dtype=np.int64)
        n = len(self.times)
        times = self.label_times if isinstance(self.label_times, dict) else {"": self.label_times}
        sizes = {**{f"label_times[{k!r}]": len(v) for k, v in times.items()},
                 **{f"features[{k!r}]": len(v) for k, v in self.features.items()},
                 **{f"labels[{k!r}]": len(v) for k, v in self.labels.items()}}
        wrong = {k: v for k, v in sizes.items() if v != n}
        if wrong:
            raise ValueError(f"{n} sample times but {wrong}")
        if len(np.unique(self.times)) != n:
            raise ValueError("sample times must be unique (they key the samples)")

    def label_time(self, name: str) -> np.ndarray:
        """int64 (N,) the instant (ms) at which label ``name`` is known."""
        return self.label_times[name] if isinstance(self.label_times, dict) else self.label_times

    def first_label_time(self) -> np.ndarray:
        """int64 (N,) the instant (ms) at which the sample's first label is known."""
        if not isinstance(self.label_times, dict):
            return self.label_times
        return np.min(np.stack(list(self.label_times.values())), axis=0) if self.label_times else self.times

    @classmethod
    def empty(cls, like: TrainingSamples) -> TrainingSamples:
        """No sample, with ``like``'s feature and label names."""
        none = np.zeros(0, dtype=np.int64)
        return cls(none, {k: none for k in like.labels}, {k: np.zeros((0,)) for k in like.features},
                   {k: np.zeros(0) for k in like.labels})


Builder = Callable[[dict[str, pd.DataFrame]], TrainingSamples]


def history_as_of(history: Mapping[str, pd.DataFrame], cut_ms: int, *, keep_after_ms: int = DAY_MS,
                  seed: int = 0) -> dict[str, pd.DataFrame]:
    """The history as known at ``cut_ms`` (module docstring). Per frame (keyed by its timeframe,
    "1m", or by instrument and timeframe, "BTCUSDT/1m"): rows with ``open_time + period <= cut_ms``
    unchanged; rows closing in (cut_ms, cut_ms + keep_after_ms] with open/high/low/close scaled by
    a per-row factor in ±[0.5%, 1.5%] and volume by one in [1.2, 1.8] (seeded); later rows
    dropped. Bars stay valid (high >= low, prices > 0).

    Raises:
        ValueError: a timeframe not in ``ml.features.rings.TIMEFRAME_MS``, or keep_after_ms < 0.
    """
    if keep_after_ms < 0:
        raise ValueError(f"keep_after_ms must be >= 0, got {keep_after_ms}")
    rng = np.random.default_rng([seed, cut_ms])
    out = {}
    for key, frame in history.items():
        tf = key.rsplit("/", 1)[-1]
        if tf not in TIMEFRAME_MS:
            raise ValueError(f"history timeframe {tf!r}: expected one of {list(TIMEFRAME_MS)}")
        close_ms = frame["open_time"].to_numpy(dtype=np.int64) + TIMEFRAME_MS[tf]
        kept = close_ms <= cut_ms + keep_after_ms
        cut = frame[kept].copy()
        after = close_ms[kept] > cut_ms
        n = int(after.sum())
        if n:
            scale = 1.0 + rng.choice([-1.0, 1.0], n) * rng.uniform(0.005, 0.015, n)
            for col in PRICE_COLUMNS:
                cut.loc[after, col] = cut.loc[after, col].to_numpy() * scale
            cut.loc[after, "volume"] = cut.loc[after, "volume"].to_numpy() * rng.uniform(1.2, 1.8, n)
        out[key] = cut.reset_index(drop=True)
    return out


def _row_max_abs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per sample (first axis) max |a - b|, NaN equal to NaN, a NaN against a number infinite."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    if a.shape != b.shape:
        return np.full(len(a), np.inf)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    d = np.where(nan_a | nan_b, 0.0, np.abs(a - b))
    d[nan_a != nan_b] = np.inf
    return d.max(axis=1) if d.shape[1] else np.zeros(len(a))


def _compare(ref, ri: np.ndarray, cut, ci: np.ndarray) -> np.ndarray:
    """Per matched sample max abs difference of one feature or label, in chunks."""
    out = np.zeros(len(ri))
    for lo in range(0, len(ri), _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        out[sl] = _row_max_abs(ref[ri[sl]], cut[ci[sl]])
    return out


def _difference_leak(component: str, cut_ms: int, times: np.ndarray, sizes: np.ndarray, what: str) -> Leak | None:
    bad = np.flatnonzero(sizes > 0)
    if not len(bad):
        return None
    return Leak(TRAINING_WINDOW, component, int(times[bad[0]]), cut_ms, float(sizes[bad].max()),
                detail=f"{what} of {len(bad)} of {len(sizes)} samples differ when the history after the cut "
                       f"is altered or removed")


def cut_leaks(reference: TrainingSamples, cut: TrainingSamples, cut_ms: int) -> list[Leak]:
    """The differences between the build from the full history and the build from the history as of
    ``cut_ms`` (module docstring), as leaks."""
    leaks = []
    common, ri, ci = np.intersect1d(reference.times, cut.times, assume_unique=True, return_indices=True)
    known = common <= cut_ms
    for name, rows in reference.features.items():
        if name not in cut.features:
            leaks.append(Leak(TRAINING_WINDOW, name, cut_ms, cut_ms, detail="feature missing from the cut build"))
            continue
        sizes = _compare(rows, ri[known], cut.features[name], ci[known])
        leaks.append(_difference_leak(name, cut_ms, common[known], sizes, f"feature {name!r}"))
    for name, values in reference.labels.items():
        labelled = reference.label_time(name)[ri] <= cut_ms
        if name in cut.labels:
            sizes = _compare(values, ri[labelled], cut.labels[name], ci[labelled])
            leak = _difference_leak(f"label:{name}", cut_ms, common[labelled], sizes, f"label {name!r}")
            if leak is not None:
                i = int(np.flatnonzero(sizes > 0)[0])
                leak = Leak(**{**leak.as_dict(), "old": values[ri[labelled][i]].item(),
                               "new": cut.labels[name][ci[labelled][i]].item()})
            leaks.append(leak)
    missing = np.setdiff1d(reference.times[reference.first_label_time() <= cut_ms], cut.times)
    if len(missing):
        leaks.append(Leak(TRAINING_WINDOW, "sample", int(missing[0]), cut_ms,
                          detail=f"{len(missing)} samples labelled by the cut are missing from the cut build "
                                 f"(their selection reads later data)"))
    extra = np.setdiff1d(cut.times[cut.times <= cut_ms], reference.times)
    if len(extra):
        leaks.append(Leak(TRAINING_WINDOW, "sample", int(extra[0]), cut_ms,
                          detail=f"{len(extra)} samples before the cut appear only in the cut build"))
    return [leak for leak in leaks if leak is not None]


def training_window_check(build: Builder, history: Mapping[str, pd.DataFrame], *, samples: int = 6, seed: int = 0,
                          cuts: Sequence[int] | None = None, keep_after_ms: int = DAY_MS) -> dict:
    """Run the check (module docstring) at ``cuts`` (ms), default ``samples`` stratified cut times
    drawn from the reference build's sample times over its whole span (:func:`cut_points`).

    Returns {"samples": reference size, "span_ms": [first, last] sample time, "cuts": [{"cut_ms",
    "compared", "labelled", "leaks"}], "leaks": [Leak, ...]}. A builder that raises ValueError on a
    cut history (e.g. "no sample") counts as an empty build. Raises what ``build`` raises on the
    full history."""
    reference = build(dict(history))
    if cuts is None:
        cuts = cut_points(reference.times.tolist(), samples, seed)
    result = {"samples": len(reference.times), "cuts": [], "leaks": [],
              "span_ms": [int(reference.times.min()), int(reference.times.max())] if len(reference.times) else None}
    for cut_ms in cuts:
        try:
            rebuilt = build(history_as_of(history, cut_ms, keep_after_ms=keep_after_ms, seed=seed))
        except ValueError as exc:
            logger.info("training-window cut at %d: empty build (%s)", cut_ms, exc)
            rebuilt = TrainingSamples.empty(reference)
        leaks = cut_leaks(reference, rebuilt, cut_ms)
        result["cuts"].append({"cut_ms": int(cut_ms), "compared": int((reference.times <= cut_ms).sum()),
                               "labelled": int((reference.first_label_time() <= cut_ms).sum()),
                               "leaks": len(leaks)})
        result["leaks"].extend(leaks)
        if leaks:
            logger.warning("training-window look-ahead at %d: %s", cut_ms, [leak.component for leak in leaks])
    return result


def candle_dataset_builder(*, start_ms: int, end_ms: int, **options) -> Builder:
    """``ml.training.dataset.make_dataset(history, start_ms=..., end_ms=..., **options)`` as a
    :data:`Builder`: a sample's input time is the close of its 1m candle (``times + 60 s``), its
    label time the close of the label's last candle (``times + (horizon + 1) min``); features are
    the normalized windows per component, labels the class index ("label") and the return."""
    from ml.training.dataset import MINUTE_MS, make_dataset

    def build(history: dict[str, pd.DataFrame]) -> TrainingSamples:
        data = make_dataset(history, start_ms=start_ms, end_ms=end_ms, **options)
        return TrainingSamples(
            times=data.times + MINUTE_MS, label_times=data.times + (data.horizon_min + 1) * MINUTE_MS,
            features={name: IndexedRows(data.windows[name], data.index[name]) for name in data.windows},
            labels={"label": data.labels, "return": data.returns})

    return build


def sample_set_builder(*, start_ms: int, end_ms: int, stride_min: int = 1, horizons_min: tuple[int, ...] = (1, 5, 15, 60),
                       reference: str = "BTCUSDT") -> Builder:
    """``ml.features.groups.history_samples`` (the live model families' candle samples) as a
    :data:`Builder`. History keys: "1m", "1h", "1d" of the traded instrument and
    "<reference>/1m". A sample's input time is the end of its live second (``times + 1 s``, the
    close of its 1m candle); the label "return_<h>m" is known at the close of the candle h minutes
    later. Features: every group's rows and mask ("mask:<group>") and the close at the instant."""
    from ml.features.groups import history_samples

    prefix = f"{reference}/"

    def build(history: dict[str, pd.DataFrame]) -> TrainingSamples:
        primary = {k: v for k, v in history.items() if "/" not in k}
        ref = {k[len(prefix):]: v for k, v in history.items() if k.startswith(prefix)}
        data = history_samples(primary, ref or None, start_ms=start_ms, end_ms=end_ms, stride_min=stride_min,
                               horizons_min=horizons_min)
        times = data.times + 1000
        features: dict = {g: IndexedRows(data.values[g], data.index[g]) for g in data.values}
        features.update({f"mask:{g}": m for g, m in data.mask.items()}, close=data.close)
        return TrainingSamples(times=times, label_times={f"return_{h}m": times + h * 60_000 for h in data.returns},
                               features=features, labels={f"return_{h}m": r for h, r in data.returns.items()})

    return build
