"""Orchestrator: a mixture of experts over the models' outputs, then a decision rule.

Gating (mixture of experts). Each model's directional call at second t is the more probable of
BUY and SELL; :class:`AccuracyScorer` scores it ``horizon_ms`` later against the sign of the
realized mid return (a flat return scores nothing). A model's gating weight is

    w_i = softmax(acc_i / temperature)_i, then floored at ``floor`` and renormalized,

where ``acc_i`` is its hit rate over its last ``window`` scored calls (Jacobs et al. 1991,
"Adaptive mixtures of local experts": softmax gating; here the gate's input is recent accuracy,
not the features). Fallback: until every model present this second has at least ``min_scored``
scored calls, the weights are equal (1/K), since a hit rate over a handful of calls is noise.
Manual weights (admin / dashboard) replace the learned ones when the mode is "manual".

Decision rule. The mixture's directional side is the more probable of BUY and SELL and the
confidence is that probability; the orchestrator acts when it reaches the side's threshold
(HOLD's probability is the rest of the mass), unless a market-condition filter holds it
(spread in basis points, realized volatility of 1 s log returns, data completeness) or the
cooldown after the last order has not passed.
"""
from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ml.models.output import ACTIONS, ModelOutput

logger = logging.getLogger(__name__)

MIXTURE_NAME = "moe"


@dataclass(frozen=True, slots=True)
class DecisionResult:
    action: str  # BUY | SELL | HOLD
    confidence: float  # probability of the directional side considered, in [0, 1]
    threshold: float  # the threshold it was compared with
    reason: str
    filter: str = ""  # the market-condition filter that held the decision ("spread", ...), if any


@dataclass(frozen=True, slots=True)
class GatingParams:
    """``window`` last scored calls per model, ``min_scored`` before leaving equal weights,
    ``temperature`` (> 0) of the softmax over hit rates, ``floor`` minimum weight in [0, 1/K],
    ``mode`` "learned" | "equal" | "manual", ``manual`` model name -> non-negative weight."""

    window: int = 100
    min_scored: int = 30
    temperature: float = 0.1
    floor: float = 0.05
    mode: str = "learned"
    manual: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MarketConditions:
    """Inputs of the market filters: spread in basis points of mid, volatility = standard
    deviation of 1 s log returns over the last minute (fraction), completeness in [0, 1].
    None = unknown (the filter passes)."""

    spread_bps: float | None = None
    volatility: float | None = None
    completeness: float | None = None


@dataclass(frozen=True, slots=True)
class FilterParams:
    """Hold when spread_bps > max_spread_bps, volatility > max_volatility or completeness <
    min_completeness. A limit of None disables its filter."""

    max_spread_bps: float | None = None
    max_volatility: float | None = None
    min_completeness: float | None = None


class AccuracyScorer:
    """Scores each model's directional calls against the realized return ``horizon_ms`` later.

    Feed :meth:`record` with each second's outputs and :meth:`observe` with each second's mid
    (the engine does both from its 1 s data). Pure, in memory; a restart starts from nothing.
    """

    def __init__(self, horizon_ms: int = 60_000, window: int = 100) -> None:
        if horizon_ms <= 0 or window <= 0:
            raise ValueError(f"horizon_ms and window must be > 0, got {horizon_ms}, {window}")
        self.horizon_ms, self.window = horizon_ms, window
        self._pending: deque[tuple[int, float, dict[str, int]]] = deque()  # (ts, price, name -> +1/-1)
        self._hits: dict[str, deque[tuple[int, float]]] = {}  # name -> (hit 0/1, |return|)
        self._hit_sums: dict[str, int] = {}  # name -> hits in _hits[name]: accuracy() is read every second

    def record(self, *, ts_ms: int, price: float, outputs: Mapping[str, ModelOutput]) -> None:
        """Remember the calls of ``outputs`` (name -> output; the mixture may be one of them) made
        at ``ts_ms`` when the mid was ``price`` (USD)."""
        calls = {n: 1 if o.probs["BUY"] >= o.probs["SELL"] else -1 for n, o in outputs.items()}
        if calls and price > 0:
            self._pending.append((ts_ms, price, calls))

    def observe(self, *, ts_ms: int, price: float) -> int:
        """Score every pending call made at or before ``ts_ms - horizon_ms`` against ``price``;
        returns how many calls were scored (flat returns are dropped unscored)."""
        scored = 0
        while self._pending and self._pending[0][0] + self.horizon_ms <= ts_ms:
            _, entry, calls = self._pending.popleft()
            move = price - entry
            if move == 0:
                continue
            sign, size = (1 if move > 0 else -1), abs(move) / entry
            for name, call in calls.items():
                hits = self._hits.setdefault(name, deque(maxlen=self.window))
                evicted = hits[0][0] if len(hits) == self.window else 0
                hit = int(call == sign)
                hits.append((hit, size))
                self._hit_sums[name] = self._hit_sums.get(name, 0) + hit - evicted
                scored += 1
        return scored

    def accuracy(self, name: str) -> tuple[float | None, int]:
        """(hit rate over the last ``window`` scored calls or None, number of scored calls)."""
        hits = self._hits.get(name)
        if not hits:
            return None, 0
        return self._hit_sums[name] / len(hits), len(hits)  # an integer count: the same float as sum()/len

    def payoff(self, name: str) -> float | None:
        """Mean |return| of the hits / mean |return| of the misses (Kelly's b), None without both."""
        hits = self._hits.get(name) or ()
        wins = [r for h, r in hits if h]
        losses = [r for h, r in hits if not h]
        if not wins or not losses or sum(losses) == 0:
            return None
        return (sum(wins) / len(wins)) / (sum(losses) / len(losses))


def gating_weights(names: Sequence[str], accuracies: Mapping[str, tuple[float | None, int]],
                   params: GatingParams) -> tuple[dict[str, float], str]:
    """Weights (summing to 1) for ``names`` and how they were chosen ("equal", "learned",
    "manual", "equal-fallback"); formula and fallback in the module docstring.

    Raises ValueError when ``names`` is empty."""
    if not names:
        raise ValueError("no model to weight")
    k = len(names)
    equal = {n: 1.0 / k for n in names}
    if params.mode == "equal":
        return equal, "equal"
    if params.mode == "manual":
        raw = [max(0.0, float(params.manual.get(n, 0.0))) for n in names]
        total = sum(raw)
        return ({n: w / total for n, w in zip(names, raw, strict=True)}, "manual") if total > 0 else (equal, "equal-fallback")
    accs = [accuracies.get(n, (None, 0)) for n in names]
    if any(a is None or count < params.min_scored for a, count in accs):
        return equal, "equal-fallback"
    z = np.array([a for a, _ in accs], dtype=np.float64) / max(params.temperature, 1e-9)
    w = np.exp(z - z.max())
    w /= w.sum()
    w = np.maximum(w, min(params.floor, 1.0 / k))
    w /= w.sum()
    return {n: float(x) for n, x in zip(names, w, strict=True)}, "learned"


def mixture_output(outputs: Mapping[str, ModelOutput], weights: Mapping[str, float]) -> ModelOutput:
    """The weighted mixture sum_i w_i * p_i of the models' probabilities as one ModelOutput
    (name "moe"); predicted returns are the weighted mean over the models that give each horizon.
    ``metadata`` keeps the weights and each model's probs. Raises ValueError if ``outputs`` is empty."""
    if not outputs:
        raise ValueError("no model output to combine")
    names = list(outputs)
    w = np.array([weights[n] for n in names], dtype=np.float64)  # (K,)
    p = np.array([[outputs[n].probs[a] for a in ACTIONS] for n in names], dtype=np.float64)  # (K, 3)
    probs = w @ p
    horizons: dict[str, tuple[float, float]] = {}
    for n in names:
        for h, r in outputs[n].predicted_returns.items():
            s, tw = horizons.get(h, (0.0, 0.0))
            horizons[h] = (s + weights[n] * r, tw + weights[n])
    return ModelOutput.from_probs(
        model_name=MIXTURE_NAME, model_version="+".join(f"{n}:{outputs[n].model_version}" for n in names),
        probs=probs / probs.sum(), predicted_returns={h: s / tw for h, (s, tw) in horizons.items() if tw > 0},
        metadata={"weights": {n: float(weights[n]) for n in names},
                  "probs": {n: dict(outputs[n].probs) for n in names}},
    )


def market_filter(conditions: MarketConditions, params: FilterParams) -> tuple[str, str] | None:
    """(filter name, reason) of the first market filter that holds, or None when all pass."""
    c, p = conditions, params
    if p.max_spread_bps is not None and c.spread_bps is not None and c.spread_bps > p.max_spread_bps:
        return "spread", f"spread {c.spread_bps:.2f} bps > {p.max_spread_bps:.2f}"
    if p.max_volatility is not None and c.volatility is not None and c.volatility > p.max_volatility:
        return "volatility", f"volatility {c.volatility:.6f} > {p.max_volatility:.6f}"
    if p.min_completeness is not None and c.completeness is not None and c.completeness < p.min_completeness:
        return "completeness", f"completeness {c.completeness:.3f} < {p.min_completeness:.3f}"
    return None


def realized_volatility(closes: Sequence[float]) -> float | None:
    """Standard deviation (ddof=1) of log returns of consecutive ``closes`` (> 0), or None with
    fewer than 3 closes."""
    x = np.asarray([c for c in closes if c > 0], dtype=np.float64)
    if x.size < 3:
        return None
    return float(np.std(np.diff(np.log(x)), ddof=1))


def decide(
    *,
    probs: Mapping[str, float],
    buy_threshold: float,
    sell_threshold: float,
    now_ms: int,
    last_order_ms: int | None,
    cooldown_ms: int,
    conditions: MarketConditions | None = None,
    filters: FilterParams | None = None,
) -> DecisionResult:
    """Turn probabilities {"BUY", "SELL", "HOLD"} into BUY / SELL / HOLD (module docstring).

    Order of the rules: threshold, market filters, cooldown. Raises KeyError when ``probs``
    lacks BUY or SELL."""
    side = "BUY" if probs["BUY"] >= probs["SELL"] else "SELL"
    confidence = float(probs[side])
    threshold = buy_threshold if side == "BUY" else sell_threshold
    if math.isnan(confidence) or confidence < threshold:
        return DecisionResult("HOLD", confidence, threshold, f"{side} confidence {confidence:.3f} < {threshold:.3f}")
    held = market_filter(conditions or MarketConditions(), filters or FilterParams())
    if held is not None:
        return DecisionResult("HOLD", confidence, threshold, f"filter: {held[1]}", held[0])
    if last_order_ms is not None and now_ms - last_order_ms < cooldown_ms:
        wait = (cooldown_ms - (now_ms - last_order_ms)) / 1000
        return DecisionResult("HOLD", confidence, threshold, f"cooldown: {wait:.0f} s left")
    return DecisionResult(side, confidence, threshold, f"{side} confidence {confidence:.3f} >= {threshold:.3f}")
