"""Training cases for online fine-tuning: (input arrays, target) pairs from three sources.

A case holds the arrays a model read, exactly as its input package stores them
(``ml.models.specs.ModelSpec.package``: for the market families every input group it read and
its ``mask_<group>`` flag, ``ml.models.live.package``), a class target (ACTIONS index) and a
reward row (bps per action after the round trip).

Sources:

- scored predictions (``SOURCE_SCORED``): the stored input package of a prediction and the
  realized return ``r`` at the model's label horizon (ml/outcomes.py). Target: the direction
  label of ``r`` with the model's own label threshold; rewards: the paper PnL of each action
  over the horizon, bps after fees ``[1e4 (r - 2 fee), 1e4 (-r - 2 fee), 0]``.
- annotations (``SOURCE_ANNOTATION``): a hand-marked trade; the BaseDataInput at the entry
  second rebuilt from the stored data, packaged for the model. Target: BUY for a long, SELL for
  a short; rewards: as above with the trade's price move ``exit / entry - 1``.
- paper trades (``SOURCE_PAPER``, DQN): a flat-to-flat round trip of a paper account
  (:func:`round_trips`); the input package of the prediction behind its first fill's decision.
  Reward: the round trip's realized PnL after fees in bps of its entry notional, known only for
  the action taken (BUY opened a long, SELL a short); the other entries are NaN.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ml.outcomes import BPS, TAKER_FEE, direction_labels

logger = logging.getLogger(__name__)

SOURCE_SCORED, SOURCE_ANNOTATION, SOURCE_PAPER = 0, 1, 2
SOURCE_NAMES = ("scored", "annotation", "paper")
BUY, SELL, HOLD = 0, 1, 2


@dataclass
class TrainingCases:
    """N cases in time order.

    Attributes:
        arrays: key -> array (N, ...) stacked from the packages (component windows float32
            (N, T, C) and ``present_<name>`` bool (N, T)).
        target: int64 (N,) ACTIONS index.
        rewards: float32 (N, 3) bps per action, NaN where unknown.
        times: int64 (N,) ms, the second each input closes at.
        source: int8 (N,) SOURCE_* code.
    """

    arrays: dict[str, np.ndarray]
    target: np.ndarray
    rewards: np.ndarray
    times: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, idx: np.ndarray) -> TrainingCases:
        return TrainingCases({k: v[idx] for k, v in self.arrays.items()}, self.target[idx], self.rewards[idx],
                             self.times[idx], self.source[idx])

    def counts(self) -> dict[str, int]:
        """Cases per source name."""
        return {name: int(np.sum(self.source == code)) for code, name in enumerate(SOURCE_NAMES)}

    @classmethod
    def concat(cls, parts: list[TrainingCases]) -> TrainingCases:
        """Join parts (same array keys and shapes) and sort by time (stable).

        Raises ValueError when the parts do not share keys and shapes, or there is none."""
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("no training case")
        keys = set(parts[0].arrays)
        if any(set(p.arrays) != keys or any(p.arrays[k].shape[1:] != parts[0].arrays[k].shape[1:] for k in keys)
               for p in parts):
            raise ValueError("training cases of different layouts cannot be joined")
        joined = cls({k: np.concatenate([p.arrays[k] for p in parts]) for k in keys},
                     np.concatenate([p.target for p in parts]), np.concatenate([p.rewards for p in parts]),
                     np.concatenate([p.times for p in parts]), np.concatenate([p.source for p in parts]))
        return joined.subset(np.argsort(joined.times, kind="stable"))


def action_rewards(returns: np.ndarray, fee: float = TAKER_FEE) -> np.ndarray:
    """float32 (N, 3) paper PnL in bps of BUY, SELL, HOLD for price moves ``returns`` (N,)."""
    r = np.asarray(returns, dtype=np.float64)
    return np.stack([BPS * (r - 2 * fee), BPS * (-r - 2 * fee), np.zeros_like(r)], axis=1).astype(np.float32)


def complete_enough(package: dict[str, np.ndarray], minimum: float = 0.9) -> bool:
    """Whether a package is complete enough to train on: every ``present_<name>`` row mask has at
    least ``minimum`` rows present; a package of input groups (``mask_<group>`` flags,
    ``ml.models.live.package``: each group is present only with >= 90 % of its rows real, and a
    missing one is masked, not zero data) needs one group present."""
    masks = [v for k, v in package.items() if k.startswith("present_")]
    flags = [v for k, v in package.items() if k.startswith("mask_")]
    if flags and not masks:
        return any(bool(np.any(f)) for f in flags)
    return bool(masks) and all(float(np.mean(m)) >= minimum for m in masks)


def _stack(packages: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = sorted(packages[0])
    for p in packages:
        if sorted(p) != keys:
            raise ValueError(f"input packages differ: {sorted(p)} vs {keys}")
    return {k: np.stack([p[k] for p in packages]) for k in keys}


def cases_from_scored(packages: list[dict[str, np.ndarray]], times: np.ndarray, returns: np.ndarray, *,
                      threshold: float, fee: float = TAKER_FEE) -> TrainingCases:
    """Cases from scored predictions (module docstring): one package per prediction, its second
    ``times`` (ms) and realized return at the model's horizon (fraction). Raises ValueError on
    packages of different layouts or lengths that differ."""
    if not (len(packages) == len(times) == len(returns)):
        raise ValueError(f"lengths differ: {len(packages)}, {len(times)}, {len(returns)}")
    if not packages:
        return _empty()
    r = np.asarray(returns, dtype=np.float64)
    return TrainingCases(_stack(packages), direction_labels(r, threshold), action_rewards(r, fee),
                         np.asarray(times, dtype=np.int64), np.full(len(r), SOURCE_SCORED, dtype=np.int8))


def cases_from_annotations(packages: list[dict[str, np.ndarray]], times: np.ndarray, sides: list[str],
                           entry_prices: np.ndarray, exit_prices: np.ndarray, *, fee: float = TAKER_FEE) -> TrainingCases:
    """Cases from annotations: the model's package at each entry second, side "long" / "short",
    entry and exit prices (USD). Raises ValueError on an unknown side."""
    if not packages:
        return _empty()
    bad = sorted(set(sides) - {"long", "short"})
    if bad:
        raise ValueError(f"unknown annotation sides {bad}")
    move = np.asarray(exit_prices, dtype=np.float64) / np.asarray(entry_prices, dtype=np.float64) - 1.0
    target = np.array([BUY if s == "long" else SELL for s in sides], dtype=np.int64)
    return TrainingCases(_stack(packages), target, action_rewards(move, fee), np.asarray(times, dtype=np.int64),
                         np.full(len(target), SOURCE_ANNOTATION, dtype=np.int8))


@dataclass
class RoundTrip:
    """A flat-to-flat sequence of fills: first fill time (ms) and index, side (+1 long / -1 short),
    entry notional (USD), realized PnL after fees (USD) and its reward in bps of the notional."""

    first_index: int
    ts_ms: int
    side: int
    notional: float
    pnl: float

    @property
    def reward_bps(self) -> float:
        return BPS * self.pnl / self.notional if self.notional > 0 else 0.0


def round_trips(sides: np.ndarray, quantities: np.ndarray, prices: np.ndarray, fees: np.ndarray,
                times: np.ndarray, tolerance: float = 1e-9) -> list[RoundTrip]:
    """Split an account's fills (time order) into round trips that start and end flat.

    Args:
        sides: +1 buy / -1 sell (N,); quantities: base units > 0 (N,); prices: USD (N,);
            fees: USD (N,); times: ms (N,).

    A fill that crosses zero (long to short) closes the round trip at the crossing and opens the
    next one with the rest (its fee split by quantity). A trip still open at the end is dropped.
    PnL = sum of signed cash flows ``-side * qty * price`` minus fees; notional = sum of the
    entry-side ``qty * price``.
    """
    trips, position, cash, fee_sum, notional, start = [], 0.0, 0.0, 0.0, 0.0, None
    for i in range(len(sides)):
        side, qty, price, fee = int(sides[i]), float(quantities[i]), float(prices[i]), float(fees[i])
        while qty > tolerance:
            if start is None:
                start, trip_side = i, side
            closing = position != 0 and np.sign(position) != side
            step = min(qty, abs(position)) if closing else qty
            part_fee = fee * step / float(quantities[i])
            position += side * step
            cash -= side * step * price
            fee_sum += part_fee
            if not closing:
                notional += step * price
            qty -= step
            if abs(position) <= tolerance:
                trips.append(RoundTrip(start, int(times[start]), trip_side, notional, cash - fee_sum))
                position, cash, fee_sum, notional, start = 0.0, 0.0, 0.0, 0.0, None
    return trips


def cases_from_round_trips(packages: list[dict[str, np.ndarray]], trips: list[RoundTrip]) -> TrainingCases:
    """DQN cases from paper round trips (module docstring), one package per trip (the input behind
    its first fill). Target: the action taken; reward known for that action only."""
    if not packages:
        return _empty()
    if len(packages) != len(trips):
        raise ValueError(f"{len(packages)} packages for {len(trips)} round trips")
    rewards = np.full((len(trips), 3), np.nan, dtype=np.float32)
    target = np.array([BUY if t.side > 0 else SELL for t in trips], dtype=np.int64)
    rewards[np.arange(len(trips)), target] = [t.reward_bps for t in trips]
    return TrainingCases(_stack(packages), target, rewards, np.array([t.ts_ms for t in trips], dtype=np.int64),
                         np.full(len(trips), SOURCE_PAPER, dtype=np.int8))


def _empty() -> TrainingCases:
    return TrainingCases({}, np.zeros(0, dtype=np.int64), np.zeros((0, 3), dtype=np.float32),
                         np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))


def heldout_split(times: np.ndarray, val_fraction: float = 0.2, embargo_ms: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and held-out cases (``times`` sorted, ms): the held-out cases are those
    in the last ``val_fraction`` of the time RANGE (not of the count); training cases end
    ``embargo_ms`` before it (their labels would look into the held-out range).

    Returns (train_idx, val_idx), int64 index arrays.
    """
    t = np.asarray(times, dtype=np.int64)
    if len(t) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cut = t[0] + (1.0 - val_fraction) * (t[-1] - t[0])
    val = np.flatnonzero(t >= cut)
    train = np.flatnonzero(t < cut - embargo_ms)
    return train, val
