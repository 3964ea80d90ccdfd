"""Look-ahead checks (in the spirit of freqtrade's ``lookahead-analysis``): what a model reads or
decides at second s must not change when the data after some t >= s is cut off or altered.

Three kinds of leak, one :class:`Leak` record each:

- ``stream``: the replayed market stream cut at t (``apps.backtest.lookahead``);
- ``candle_store``: the stored 1m/1h/1d (and 1 s) candles whose period closes after t + 1 s
  altered, and every ring the inputs are cut from holding only candles closed by then;
- ``training_window``: a training-set builder given history cut at T (``ml.backtest.lookahead_training``).

The rule is the one of ``ml.features.base_input``: at the close of second ``ts`` (ms), a candle of
period p opened at ``open_time`` may be read only once ``open_time + p <= ts + 1000``.

This module is pure comparison (no Django): cut points, decision logs, recorded model inputs.
A decision log maps second (ms since epoch) -> (action, confidence, P(BUY), P(SELL), P(HOLD)),
rounded to ``DIGITS``.
"""
from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

logger = logging.getLogger(__name__)

DIGITS = 9  # confidences equal to 1e-9 are the same decision; torch CPU inference is bit-reproducible
STREAM, CANDLE_STORE, TRAINING_WINDOW = "stream", "candle_store", "training_window"
KINDS = (STREAM, CANDLE_STORE, TRAINING_WINDOW)
SECOND_MS = 1000


@dataclass(frozen=True)
class Leak:
    """One look-ahead found.

    Attributes:
        kind: ``stream``, ``candle_store`` or ``training_window``.
        component: what changed: a BaseDataInput component ("primary_1h"), a ring
            ("ETHUSDT/1h ring"), "decision", a training feature or "label".
        ts: ms since epoch: the second (or training sample's input time) that changed.
        cut_ms: ms since epoch: where the data was cut or altered from.
        max_abs_diff: largest absolute difference of the values (None where not numeric).
        old, new: the decision (or label) before and after the cut, where one applies.
        detail: one sentence for a person.
    """

    kind: str
    component: str
    ts: int
    cut_ms: int
    max_abs_diff: float | None = None
    old: object = None
    new: object = None
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def cut_points(seconds: Sequence[int], samples: int, seed: int = 0) -> list[int]:
    """``samples`` distinct cut points spread over the whole of ``seconds`` (any ints, e.g. ms):
    the sorted distinct values less the last (cutting there truncates nothing) are split into
    ``samples`` consecutive strata of (nearly) equal size and one value is drawn from each with a
    seeded ``random.Random``. All of them when there are no more than ``samples``. Sorted.
    Raises ValueError for samples < 1."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    candidates = sorted(set(seconds))[:-1]
    if len(candidates) <= samples:
        return candidates
    rng = random.Random(seed)
    bounds = np.linspace(0, len(candidates), samples + 1).round().astype(int)
    return [candidates[rng.randrange(lo, hi)] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def decision_changes(full: Mapping[int, tuple], truncated: Mapping[int, tuple], cut_ms: int) -> list[dict]:
    """Every second <= ``cut_ms`` whose decision differs between the full and the truncated run
    (a decision present in only one run counts): [{"ts", "full", "truncated"}] in time order."""
    keys = sorted(k for k in set(full) | set(truncated) if k <= cut_ms)
    return [{"ts": k, "full": full.get(k), "truncated": truncated.get(k)} for k in keys if full.get(k) != truncated.get(k)]


def decision_leaks(kind: str, cut_ms: int, changes: Iterable[dict]) -> list[Leak]:
    """:func:`decision_changes` as leaks of ``kind``; ``max_abs_diff`` is the largest change of
    the mixture's probabilities and confidence (None when one side has no decision)."""
    leaks = []
    for change in changes:
        old, new = change["full"], change["truncated"]
        size = None
        if old is not None and new is not None:
            pairs = [(a, b) for a, b in zip(old[1:], new[1:], strict=False) if a is not None and b is not None]
            size = max((abs(a - b) for a, b in pairs), default=None)
        leaks.append(Leak(kind, "decision", change["ts"], cut_ms, size, old, new,
                          "the decision changed when the data after the cut was removed or altered"))
    return leaks


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| (NaN equal to NaN; a NaN against a number counts as infinite).
    Raises ValueError when the shapes differ."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    nan_a, nan_b = np.isnan(a64), np.isnan(b64)
    if (nan_a != nan_b).any():
        return float("inf")
    both = ~nan_a
    return float(np.abs(a64[both] - b64[both]).max()) if both.any() else 0.0


def _digest(array: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(array).tobytes(), digest_size=16).digest()


class InputLog:
    """The model inputs of one (reference) run, per second, to compare another run's with.

    ``record(ts, components, present)`` keeps, per component, a digest of the values and the
    present mask, and the arrays themselves for the components in ``keep`` (None: all), each
    distinct array once (the 1m/1h/1d windows change once a period). Memory: the kept arrays, e.g.
    ~12 KB per second for the two 1 s candle components (300 x 5 float32 each); a component not
    kept is compared by digest only (its size of change is then unknown: None).
    """

    def __init__(self, keep: Iterable[str] | None = None) -> None:
        self.keep = None if keep is None else frozenset(keep)
        self.seconds: dict[int, dict[str, tuple[bytes, bytes]]] = {}
        self._arrays: dict[bytes, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.seconds)

    def record(self, ts: int, components: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray]) -> None:
        """Keep second ``ts``'s components (name -> array) and present masks (name -> bool array)."""
        entry = {}
        for name, values in components.items():
            mask = present.get(name, np.zeros(0, dtype=bool))
            keys = _digest(values), _digest(mask)
            if self.keep is None or name in self.keep:
                self._arrays.setdefault(keys[0], np.array(values, copy=True))
                self._arrays.setdefault(keys[1], np.array(mask, copy=True))
            entry[name] = keys
        self.seconds[ts] = entry

    def differences(self, ts: int, components: Mapping[str, np.ndarray],
                    present: Mapping[str, np.ndarray]) -> list[tuple[str, float | None, int | None]]:
        """[(component, max abs difference of the values or None, present rows that differ or
        None)] for every component of second ``ts`` that differs from the recorded one (a
        component or second missing on either side counts, with sizes None)."""
        recorded = self.seconds.get(ts)
        if recorded is None:
            return [(name, None, None) for name in components]
        out = []
        for name in sorted(set(recorded) | set(components)):
            if name not in recorded or name not in components:
                out.append((name, None, None))
                continue
            mask = present.get(name, np.zeros(0, dtype=bool))
            keys = recorded[name]
            if keys == (_digest(components[name]), _digest(mask)):
                continue
            old_values, old_mask = self._arrays.get(keys[0]), self._arrays.get(keys[1])
            size = max_abs_diff(old_values, components[name]) if old_values is not None else None
            rows = int((old_mask != mask).sum()) if old_mask is not None and old_mask.shape == mask.shape else None
            out.append((name, size, rows))
        return out


def input_leaks(kind: str, cut_ms: int, ts: int, differences: Iterable[tuple[str, float | None, int | None]]) -> list[Leak]:
    """:meth:`InputLog.differences` of second ``ts`` as leaks of ``kind``."""
    return [Leak(kind, name, ts, cut_ms, size, detail=f"model input changed ({rows} present rows differ)"
                 if rows else "model input changed")
            for name, size, rows in differences]


def ring_leaks(ts: int, newest: Mapping[str, tuple[int | None, int]], cut_ms: int | None = None) -> list[Leak]:
    """The structural rule at the close of second ``ts`` (ms): every ring the inputs are cut from
    holds only candles closed by ``ts + 1000``. ``newest``: ring name -> (open time of its newest
    candle in ms or None when empty, period in ms). Since a BaseDataInput's rows are cut from these
    rings only (filled rows repeat an earlier row), no row of an input can then be from a candle
    that closes later. Returns one ``candle_store`` leak per ring that breaks it."""
    leaks = []
    for name, (last_open, period) in newest.items():
        if last_open is not None and last_open + period > ts + SECOND_MS:
            leaks.append(Leak(CANDLE_STORE, f"{name} ring", ts, ts if cut_ms is None else cut_ms,
                              detail=f"holds a candle opened at {last_open} that closes at {last_open + period}, "
                                     f"after the end of second {ts} ({ts + SECOND_MS})"))
    return leaks


def summarize(leaks: Iterable[Leak]) -> dict[str, dict[str, int]]:
    """kind -> component -> number of leaks (for the report)."""
    out: dict[str, dict[str, int]] = {}
    for leak in leaks:
        by_component = out.setdefault(leak.kind, {})
        by_component[leak.component] = by_component.get(leak.component, 0) + 1
    return out
