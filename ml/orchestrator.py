"""Orchestrator: a mixture of experts over the models' calibrated net edges, then a decision rule in bps.

The models' contract. Each model's ModelOutput carries ``metadata["edge_bps"] = {"BUY": e_b,
"SELL": e_s}``: its calibrated expected return, in basis points, of buying (long) or selling
(short / closing a long) now and holding ``metadata["horizon_min"]`` minutes, NET of the
round-trip cost it was trained with (``metadata["cost_bps"]``: fees both ways + spread). An
output without a finite edge for both sides (an old checkpoint) has no edge: it gets weight 0.

Scoring (:class:`NetEdgeScorer`). A model's call at second t is the side of its larger edge when
that edge is > 0 (an old checkpoint: the argmax of its probabilities when it is BUY or SELL), or
no call. A call is scored ``horizon`` later (the model's ``horizon_min``, else the desk's score
horizon) as its net return in bps:

    r = s * 1e4 * (mid_{t+h} / mid_t - 1) - cost,   s = +1 for BUY, -1 for SELL,

with ``cost`` the model's ``cost_bps`` (else ``DEFAULT_COST_BPS``). Each model keeps its last
``window`` scores.

Gating (:func:`gating_weights`). In "learned" mode a model's weight is proportional to its mean
net score m_i over the window, kept only when the mean's lower bound m_i - z * SE_i > 0
(SE_i = sample std / sqrt(n_i), z = ``GatingParams.z``, 1 by default: "mean minus one standard
error") with n_i >= ``min_scored``; any other model gets weight 0. Calls made every second over
a horizon of minutes overlap, so n_i overstates the independent evidence and SE_i is too small:
the bound is a screen, not a significance test (the walk-forward evaluation is the judge of
models). When no model passes, every weight is 0 and the desk holds ("learned"), or, in
"fallback" mode, the models with a calibrated edge share equal weights. "equal" and "manual"
weight the models with a calibrated edge equally or by hand. Every weight comes with a reason.

Decision rule (:func:`decide`). The mixture's expected net edge per side is E[side] = sum_i w_i *
edge_i[side] (weights summing to 1 over the models with w_i > 0). The better side acts when its
edge exceeds the margin (bps); otherwise HOLD with the numbers in the reason. Then the market
filters (spread, 1 s volatility, completeness) and the cooldown after the last order.
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
SIDES = ("BUY", "SELL")
DEFAULT_COST_BPS = 20.0  # round trip for a model that does not say: 0.1% taker fee each way (Binance spot)
GATING_MODES = ("learned", "fallback", "equal", "manual")


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """``action`` BUY | SELL | HOLD; ``edge_bps`` the mixture's expected net edge of the better side
    (bps; None when no model has weight); ``margin_bps`` the margin it was compared with."""

    action: str
    edge_bps: float | None
    margin_bps: float
    reason: str
    filter: str = ""  # what held the decision ("spread", "trading", "risk", ...), if anything

    @property
    def confidence(self) -> float:
        """What ``Decision.confidence`` stores: the edge in bps, 0.0 when there is none."""
        return 0.0 if self.edge_bps is None else self.edge_bps

    @property
    def threshold(self) -> float:
        """What ``Decision.threshold`` stores: the margin in bps."""
        return self.margin_bps

    def held(self, reason: str, filter: str) -> DecisionResult:
        """This decision turned into a HOLD for ``reason`` (the edge and margin kept)."""
        return DecisionResult("HOLD", self.edge_bps, self.margin_bps, reason, filter)


@dataclass(frozen=True, slots=True)
class GatingParams:
    """``window`` last scores per model, ``min_scored`` before a model may get weight, ``z`` (>= 0)
    standard errors below the mean for the lower bound, ``mode`` one of GATING_MODES,
    ``manual`` model name -> non-negative weight."""

    window: int = 600
    min_scored: int = 120
    z: float = 1.0
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


@dataclass(frozen=True, slots=True)
class EdgeStats:
    """A model's scored calls: mean and standard error of the net return (bps), count, and the
    share of calls with a positive net return."""

    mean_bps: float
    se_bps: float
    n: int
    win_rate: float


def _finite(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def model_edge(output: ModelOutput) -> dict[str, float] | None:
    """The output's calibrated net edge {"BUY", "SELL"} in bps, or None when it has none (an old
    checkpoint, or a value that is missing or not finite)."""
    edge = output.metadata.get("edge_bps")
    if not isinstance(edge, Mapping) or not all(_finite(edge.get(s)) for s in SIDES):
        return None
    return {s: float(edge[s]) for s in SIDES}


def model_call(output: ModelOutput) -> str | None:
    """The side the model would take now (module docstring, Scoring), or None."""
    edge = model_edge(output)
    if edge is None:
        return output.action if output.action in SIDES else None
    side = "BUY" if edge["BUY"] >= edge["SELL"] else "SELL"
    return side if edge[side] > 0 else None


def _metadata_number(output: ModelOutput, key: str, default: float) -> float:
    value = output.metadata.get(key)
    return float(value) if _finite(value) and value > 0 else default


class _ScoreWindow:
    """The last ``size`` scores (bps) of one model with running sum, sum of squares and count of
    positive scores, so that :meth:`NetEdgeScorer.stats` costs O(1) every second. The sums are
    recomputed exactly (math.fsum) every ``size`` appends, which bounds the rounding drift."""

    __slots__ = ("scores", "total", "squares", "wins", "appended")

    def __init__(self, size: int) -> None:
        self.scores: deque[float] = deque(maxlen=size)
        self.total = self.squares = 0.0
        self.wins = self.appended = 0

    def append(self, x: float) -> None:
        x = float(x)
        if len(self.scores) == self.scores.maxlen:
            old = self.scores[0]
            self.total -= old
            self.squares -= old * old
            self.wins -= 1 if old > 0 else 0
        self.scores.append(x)
        self.total += x
        self.squares += x * x
        self.wins += 1 if x > 0 else 0
        self.appended += 1
        if self.appended % self.scores.maxlen == 0:
            self.total = math.fsum(self.scores)
            self.squares = math.fsum(v * v for v in self.scores)


class NetEdgeScorer:
    """Scores each model's calls net of cost ``horizon`` later (module docstring, Scoring).

    Feed :meth:`record` with each second's outputs and :meth:`observe` with each second's mid (the
    desk does both). ``horizon_ms`` applies to outputs without ``horizon_min``; ``cost_bps`` to
    outputs without ``cost_bps``. Pure, in memory; a restart starts from nothing.
    Raises ValueError for a non-positive horizon or window or a negative cost."""

    def __init__(self, horizon_ms: int = 60_000, window: int = 600, cost_bps: float = DEFAULT_COST_BPS) -> None:
        if horizon_ms <= 0 or window <= 0 or cost_bps < 0:
            raise ValueError(f"horizon_ms and window must be > 0 and cost_bps >= 0, got {horizon_ms}, {window}, {cost_bps}")
        self.horizon_ms, self.window, self.cost_bps = horizon_ms, window, cost_bps
        # horizon ms -> FIFO of (ts, mid, [(name, +1/-1, cost bps)]): one queue per horizon stays in time order
        self._pending: dict[int, deque[tuple[int, float, list[tuple[str, int, float]]]]] = {}
        self._scores: dict[str, _ScoreWindow] = {}

    def record(self, *, ts_ms: int, price: float, outputs: Mapping[str, ModelOutput]) -> None:
        """Remember the calls of ``outputs`` (name -> output; the mixture may be one of them) made at
        ``ts_ms`` when the mid was ``price`` (USD)."""
        if not price > 0:
            return
        calls: dict[int, list[tuple[str, int, float]]] = {}
        for name, output in outputs.items():
            side = model_call(output)
            if side is None:
                continue
            minutes = output.metadata.get("horizon_min")
            horizon = int(minutes * 60_000) if _finite(minutes) and minutes > 0 else self.horizon_ms
            cost = _metadata_number(output, "cost_bps", self.cost_bps)
            calls.setdefault(horizon, []).append((name, 1 if side == "BUY" else -1, cost))
        for horizon, batch in calls.items():
            self._pending.setdefault(horizon, deque()).append((ts_ms, price, batch))

    def observe(self, *, ts_ms: int, price: float) -> int:
        """Score every pending call made at or before ``ts_ms - horizon`` against ``price`` (USD);
        returns how many calls were scored."""
        scored = 0
        for horizon, queue in self._pending.items():
            while queue and queue[0][0] + horizon <= ts_ms:
                _, entry, batch = queue.popleft()
                move_bps = 1e4 * (price / entry - 1.0)
                for name, sign, cost in batch:
                    window = self._scores.get(name) or self._scores.setdefault(name, _ScoreWindow(self.window))
                    window.append(sign * move_bps - cost)
                    scored += 1
        return scored

    def stats(self, name: str) -> EdgeStats | None:
        """Mean, standard error (ddof=1; 0 with one score) and count of the model's net scores (bps),
        None before its first score."""
        window = self._scores.get(name)
        if window is None or not window.scores:
            return None
        n = len(window.scores)
        mean = window.total / n
        variance = max(0.0, (window.squares - n * mean * mean) / (n - 1)) if n > 1 else 0.0
        return EdgeStats(mean, math.sqrt(variance / n), n, window.wins / n)

    def accuracy(self, name: str) -> tuple[float | None, int]:
        """(share of scored calls with a positive net return or None, number of scored calls)."""
        st = self.stats(name)
        return (None, 0) if st is None else (st.win_rate, st.n)

    def payoff(self, name: str) -> float | None:
        """Mean net win / mean |net loss| (Kelly's b), None without both."""
        window = self._scores.get(name)
        scores = window.scores if window is not None else ()
        wins = [x for x in scores if x > 0]
        losses = [-x for x in scores if x <= 0]
        if not wins or not losses or sum(losses) == 0:
            return None
        return (sum(wins) / len(wins)) / (sum(losses) / len(losses))


def _measured(name: str, st: EdgeStats | None, params: GatingParams) -> tuple[float, str]:
    """(raw learned weight, reason) of one model with a calibrated edge."""
    if st is None or st.n < params.min_scored:
        return 0.0, f"{name}: weight 0 — {st.n if st else 0} scored calls < {params.min_scored} needed"
    text = f"net edge {st.mean_bps:+.1f} bps ± {st.se_bps:.1f} over {st.n} calls"
    if st.mean_bps - params.z * st.se_bps <= 0:
        return 0.0, f"{name}: weight 0 — {text} (mean − {params.z:g}·SE ≤ 0)"
    return st.mean_bps, f"{name}: {text}"


def gating_weights(outputs: Mapping[str, ModelOutput], stats: Mapping[str, EdgeStats | None],
                   params: GatingParams) -> tuple[dict[str, float], str, dict[str, str]]:
    """(weights, how, why): weights per model of ``outputs`` summing to 1 over those > 0 (all 0 when
    none may act), how they were chosen ("learned", "learned-none", "fallback-equal", "equal",
    "manual") and a reason per model for the dashboard. Formula in the module docstring.

    Raises ValueError when ``outputs`` is empty or the mode is unknown."""
    if not outputs:
        raise ValueError("no model to weight")
    if params.mode not in GATING_MODES:
        raise ValueError(f"mode: expected one of {', '.join(GATING_MODES)}, got {params.mode!r}")
    raw, why = {}, {}
    edged = [n for n, o in outputs.items() if model_edge(o) is not None]
    for name in outputs:
        if name not in edged:
            raw[name], why[name] = 0.0, f"{name}: weight 0 — no calibrated edge_bps (old checkpoint)"
        elif params.mode == "equal":
            raw[name], why[name] = 1.0, f"{name}: equal weight"
        elif params.mode == "manual":
            raw[name] = max(0.0, float(params.manual.get(name, 0.0)))
            why[name] = f"{name}: manual weight {raw[name]:g}"
        else:
            raw[name], why[name] = _measured(name, stats.get(name), params)
    how = params.mode
    if params.mode in ("learned", "fallback") and not any(raw.values()):
        how = "learned-none"
        if params.mode == "fallback" and edged:
            how = "fallback-equal"
            for name in edged:
                raw[name], why[name] = 1.0, f"{why[name]}; fallback: equal until a model has measured edge"
    total = math.fsum(raw.values())
    weights = {n: (w / total if total > 0 else 0.0) for n, w in raw.items()}
    return weights, how, why


def mixture_edge(outputs: Mapping[str, ModelOutput], weights: Mapping[str, float]) -> dict[str, float] | None:
    """E[side] = sum_i w_i * edge_i[side] over the models with w_i > 0 and an edge, weights
    renormalized over them (bps); None when there is no such model."""
    used = [(weights.get(n, 0.0), model_edge(o)) for n, o in outputs.items()]
    used = [(w, e) for w, e in used if w > 0 and e is not None]
    total = math.fsum(w for w, _ in used)
    if total <= 0:
        return None
    return {s: math.fsum(w * e[s] for w, e in used) / total for s in SIDES}


def mixture_output(outputs: Mapping[str, ModelOutput], weights: Mapping[str, float]) -> ModelOutput:
    """The mixture as one ModelOutput (name "moe"): probabilities sum_i w_i * p_i (equal weights
    when every weight is 0: for display only, decisions use the edge), predicted returns the
    weighted mean over the models that give each horizon, and metadata {"weights", "probs" per
    model, "edges" per model (None without), "edge_bps": :func:`mixture_edge`, "horizon_min" and
    "cost_bps": weighted means over the models that give them}. Raises ValueError if ``outputs`` is empty."""
    if not outputs:
        raise ValueError("no model output to combine")
    names = list(outputs)
    w = np.array([weights.get(n, 0.0) for n in names], dtype=np.float64)  # (K,)
    if w.sum() <= 0:
        w = np.full(len(names), 1.0 / len(names))
    p = np.array([[outputs[n].probs[a] for a in ACTIONS] for n in names], dtype=np.float64)  # (K, 3)
    probs = w @ p
    horizons: dict[str, tuple[float, float]] = {}
    for n, wn in zip(names, w, strict=True):
        for h, r in outputs[n].predicted_returns.items():
            s, tw = horizons.get(h, (0.0, 0.0))
            horizons[h] = (s + wn * r, tw + wn)
    edge = mixture_edge(outputs, weights)
    metadata = {"weights": {n: float(weights.get(n, 0.0)) for n in names},
                "probs": {n: dict(outputs[n].probs) for n in names},
                "edges": {n: model_edge(outputs[n]) for n in names}, "edge_bps": edge}
    for key in ("horizon_min", "cost_bps"):
        given = [(weights.get(n, 0.0), outputs[n].metadata[key]) for n in names
                 if _finite(outputs[n].metadata.get(key)) and weights.get(n, 0.0) > 0]
        if given and sum(x for x, _ in given) > 0:
            metadata[key] = sum(x * v for x, v in given) / sum(x for x, _ in given)
    return ModelOutput.from_probs(
        model_name=MIXTURE_NAME, model_version="+".join(f"{n}:{outputs[n].model_version}" for n in names),
        probs=probs / probs.sum(), predicted_returns={h: s / tw for h, (s, tw) in horizons.items() if tw > 0},
        metadata=metadata,
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
    edge_bps: Mapping[str, float] | None,
    margin_bps: float,
    now_ms: int,
    last_order_ms: int | None,
    cooldown_ms: int,
    conditions: MarketConditions | None = None,
    filters: FilterParams | None = None,
    no_edge_reason: str = "no model has weight",
) -> DecisionResult:
    """Turn the mixture's net edge {"BUY", "SELL"} (bps, :func:`mixture_edge`; None: no model has
    weight, the reason is ``no_edge_reason``) into BUY / SELL / HOLD (module docstring).

    Order of the rules: edge > margin, market filters, cooldown. Raises KeyError when ``edge_bps``
    lacks BUY or SELL."""
    if edge_bps is None:
        return DecisionResult("HOLD", None, margin_bps, f"HOLD: {no_edge_reason}")
    side = "BUY" if edge_bps["BUY"] >= edge_bps["SELL"] else "SELL"
    edge = float(edge_bps[side])
    if math.isnan(edge) or not edge > margin_bps:
        relation = "=" if edge == margin_bps else "<"
        return DecisionResult("HOLD", edge, margin_bps, f"edge {side} {edge:+.1f} bps {relation} margin {margin_bps:.1f} bps")
    held = market_filter(conditions or MarketConditions(), filters or FilterParams())
    if held is not None:
        return DecisionResult("HOLD", edge, margin_bps, f"filter: {held[1]}", held[0])
    if last_order_ms is not None and now_ms - last_order_ms < cooldown_ms:
        wait = (cooldown_ms - (now_ms - last_order_ms)) / 1000
        return DecisionResult("HOLD", edge, margin_bps, f"cooldown: {wait:.0f} s left")
    return DecisionResult(side, edge, margin_bps, f"edge {side} {edge:+.1f} bps > margin {margin_bps:.1f} bps")
