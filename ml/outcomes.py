"""Outcome scoring of predictions: realized return, direction label, correctness, PnL, calibration.

Pure numpy (no Django, no torch): the Django service ``apps.predictions.outcomes`` feeds it arrays
read in one query and stores the result.

Definitions, for a prediction whose input closes at the end of exchange second ``ts`` (ms, the
start of that second) and a horizon ``h`` (ms):

- start instant ``t0 = ts + 1000`` and end instant ``t1 = t0 + h``; the price at an instant ``X``
  is the close of the last 1 s candle that closed at or before ``X`` (close time = open time +
  1000) and no more than ``stale_ms`` before it; without one, the close of the 1 m candle that
  closes exactly at ``X`` (minute-aligned instants only). Otherwise the price is unknown and
  the prediction is not scored at that horizon (yet).
- realized return: SIMPLE return ``r = p(t1) / p(t0) - 1`` (a fraction, not log), as the CNN's
  training labels (ml/training/dataset.py) use.
- direction label: BUY if ``r > band``, SELL if ``r < -band``, else HOLD, with ``band`` the
  CNN's label threshold, one Binance spot taker round trip ``2 x 0.1 % = 0.2 %``
  (``ml.training.dataset.label_returns``; the equality is tested).
- correct: the predicted action equals the label.
- PnL attribution (bps of the notional, after fees) of acting on the call for ``h`` with a market
  order in and out: BUY ``1e4 (r - 2 fee)``, SELL ``1e4 (-r - 2 fee)``, HOLD ``0``; the DQN's
  net rewards (``ml.training.market_train.net_rewards``, with a 21 bps round trip).
- Brier score (Brier 1950, "Verification of forecasts expressed in terms of probability",
  Monthly Weather Review 78(1)) of the probability vector: ``sum_k (p_k - y_k)^2`` over the three
  classes, in [0, 2]; 0 is perfect, the uninformed ``(1/3, 1/3, 1/3)`` scores 2/3.
- Reliability (calibration) bins: the confidence (max probability) in equal-width bins against
  the accuracy in each bin, and the expected calibration error ``ECE = sum_b n_b / n |acc_b -
  conf_b|`` (Naeini et al. 2015, "Obtaining well calibrated probabilities using Bayesian
  binning"; Guo et al. 2017, "On Calibration of Modern Neural Networks").
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ml.models.output import ACTIONS

logger = logging.getLogger(__name__)

BUY, SELL, HOLD = (ACTIONS.index(a) for a in ("BUY", "SELL", "HOLD"))
TAKER_FEE = 0.001  # Binance spot taker fee per side, as ml.training.dataset.TAKER_FEE
LABEL_BAND = 2.0 * TAKER_FEE  # the CNN's default label threshold
BPS = 1e4
HORIZONS_MS: dict[str, int] = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "60m": 3_600_000}
SECOND_MS, MINUTE_MS = 1_000, 60_000
DEFAULT_STALE_MS = 5_000  # a 1 s price older than this at the instant is no price


@dataclass
class PriceSeries:
    """Closes of one instrument by close instant, oldest first.

    Attributes:
        close_1s: int64 (A,) close instants (open time + 1000, ms) of the 1 s candles, sorted.
        price_1s: float64 (A,) their closes (quote currency).
        close_1m: int64 (B,) close instants of the 1 m candles, sorted.
        price_1m: float64 (B,) their closes.
    """

    close_1s: np.ndarray
    price_1s: np.ndarray
    close_1m: np.ndarray
    price_1m: np.ndarray

    @classmethod
    def from_open_times(cls, open_1s: np.ndarray, close_1s: np.ndarray, open_1m: np.ndarray,
                        close_1m: np.ndarray) -> PriceSeries:
        """From candle open times (ms) and closes; sorts each timeframe by time."""
        o1, o2 = np.asarray(open_1s, dtype=np.int64), np.asarray(open_1m, dtype=np.int64)
        a, b = np.argsort(o1, kind="stable"), np.argsort(o2, kind="stable")
        return cls(o1[a] + SECOND_MS, np.asarray(close_1s, dtype=np.float64)[a],
                   o2[b] + MINUTE_MS, np.asarray(close_1m, dtype=np.float64)[b])

    def last_instant(self) -> int | None:
        """The newest close instant (ms) known in either timeframe, or None when empty."""
        ends = [int(s[-1]) for s in (self.close_1s, self.close_1m) if len(s)]
        return max(ends) if ends else None

    def price_at(self, instants: np.ndarray, stale_ms: int = DEFAULT_STALE_MS) -> np.ndarray:
        """float64 prices (N,) at ``instants`` (N,) ms (module docstring); NaN where unknown."""
        x = np.asarray(instants, dtype=np.int64)
        out = np.full(x.shape, np.nan)
        if len(self.close_1s):
            j = np.searchsorted(self.close_1s, x, side="right") - 1
            jc = np.clip(j, 0, None)
            ok = (j >= 0) & (self.close_1s[jc] >= x - stale_ms)
            out[ok] = self.price_1s[jc[ok]]
        if len(self.close_1m):
            todo = np.isnan(out)
            j = np.clip(np.searchsorted(self.close_1m, x[todo]), 0, len(self.close_1m) - 1)
            hit = self.close_1m[j] == x[todo]
            idx = np.flatnonzero(todo)[hit]
            out[idx] = self.price_1m[j[hit]]
        return out


def direction_labels(returns: np.ndarray, band: float = LABEL_BAND) -> np.ndarray:
    """ACTIONS index (int64, same shape): BUY if r > band, SELL if r < -band, else HOLD."""
    r = np.asarray(returns, dtype=np.float64)
    labels = np.full(r.shape, HOLD, dtype=np.int64)
    labels[r > band] = BUY
    labels[r < -band] = SELL
    return labels


def pnl_bps(actions: np.ndarray, returns: np.ndarray, fee: float = TAKER_FEE) -> np.ndarray:
    """PnL (bps of notional, after a taker fee in and out) of acting on each call: float64 (N,)."""
    a, r = np.asarray(actions, dtype=np.int64), np.asarray(returns, dtype=np.float64)
    out = np.zeros(r.shape)
    out[a == BUY] = BPS * (r[a == BUY] - 2.0 * fee)
    out[a == SELL] = BPS * (-r[a == SELL] - 2.0 * fee)
    return out


def brier_scores(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Multi-class Brier score per row: probs float (N, 3) ACTIONS order, labels int (N,) -> (N,)."""
    p = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(len(ACTIONS))[np.asarray(labels, dtype=np.int64)]
    return ((p - onehot) ** 2).sum(axis=1)


@dataclass
class Scored:
    """Scores of N predictions at one horizon; rows where ``known`` is False are not scorable yet.

    Attributes (all (N,)): known bool, price_start / price_end float64 (quote currency),
    realized_return float64 (simple), label int64 ACTIONS index, correct bool, pnl_bps float64,
    brier float64.
    """

    known: np.ndarray
    price_start: np.ndarray
    price_end: np.ndarray
    realized_return: np.ndarray
    label: np.ndarray
    correct: np.ndarray
    pnl_bps: np.ndarray
    brier: np.ndarray


def score_predictions(ts_ms: np.ndarray, actions: np.ndarray, probs: np.ndarray, horizon_ms: int,
                      prices: PriceSeries, *, band: float = LABEL_BAND, fee: float = TAKER_FEE,
                      stale_ms: int = DEFAULT_STALE_MS) -> Scored:
    """Score predictions at one horizon (module docstring).

    Args:
        ts_ms: int64 (N,) second each prediction's input closes at (start of the second, ms).
        actions: int (N,) predicted ACTIONS index.
        probs: float (N, 3) predicted probabilities, ACTIONS order.
        horizon_ms: e.g. HORIZONS_MS["5m"].

    Raises:
        ValueError: mismatched lengths or a negative horizon.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    a = np.asarray(actions, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64).reshape(len(ts), len(ACTIONS))
    if len(a) != len(ts) or horizon_ms <= 0:
        raise ValueError(f"need equal lengths and horizon > 0; got {len(ts)}, {len(a)}, {horizon_ms}")
    t0 = ts + SECOND_MS
    p0, p1 = prices.price_at(t0, stale_ms), prices.price_at(t0 + horizon_ms, stale_ms)
    known = np.isfinite(p0) & np.isfinite(p1) & (np.nan_to_num(p0) > 0)
    r = np.where(known, p1 / np.where(known, p0, 1.0) - 1.0, np.nan)
    label = direction_labels(np.nan_to_num(r), band)
    return Scored(known=known, price_start=p0, price_end=p1, realized_return=r, label=label,
                  correct=(label == a) & known, pnl_bps=pnl_bps(a, np.nan_to_num(r), fee), brier=brier_scores(p, label))


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict:
    """Calibration of the predicted action's probability (module docstring).

    Args:
        confidence: float (N,) max probability of each prediction, in [0, 1].
        correct: bool (N,).

    Returns:
        {"bins": [{"lo", "hi", "n", "confidence", "accuracy"}, ...] (empty bins have None means),
        "ece": float or None when N = 0, "n": N}.
    """
    c = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    ok = np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(c, edges[1:-1], right=True), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        m = which == b
        n = int(m.sum())
        conf = float(c[m].mean()) if n else None
        acc = float(ok[m].mean()) if n else None
        if n:
            ece += n / len(c) * abs(acc - conf)
        bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "n": n, "confidence": conf, "accuracy": acc})
    return {"bins": bins, "ece": float(ece) if len(c) else None, "n": int(len(c))}


@dataclass(frozen=True)
class AlertRule:
    """Thresholds of the learning-loop alerts (``check_regression`` / ``check_stagnation``).

    Attributes:
        window: scored outcomes per window (the last ``window`` vs the ``window`` before them).
        k_se: a regression is a drop of the accuracy by more than ``k_se`` standard errors.
        epsilon: stagnation when the accuracy is within ±epsilon of the always-HOLD baseline.
        retrains: stagnation when the last ``retrains`` checkpoints did not beat the best before them.
    """

    window: int = 500
    k_se: float = 3.0
    epsilon: float = 0.01
    retrains: int = 3


def check_regression(previous: np.ndarray, recent: np.ndarray, rule: AlertRule = AlertRule()) -> dict | None:
    """Regression when the recent accuracy fell below the previous window's by more than ``k_se``
    standard errors of the difference of two proportions (unpooled, Wald: ``sqrt(p1 q1 / n1 +
    p2 q2 / n2)``; a floor of ``1 / n`` keeps a perfect window from giving zero error).

    Args:
        previous, recent: bool (n,) correctness, oldest first, each at least ``rule.window`` long
            (shorter windows never alert).

    Returns:
        {"previous", "recent", "drop", "se", "k_se", "n"} when it regressed, else None.
    """
    prev, rec = np.asarray(previous, dtype=bool)[-rule.window:], np.asarray(recent, dtype=bool)[-rule.window:]
    if len(prev) < rule.window or len(rec) < rule.window:
        return None
    p1, p2 = float(prev.mean()), float(rec.mean())
    se = max(math.sqrt(p1 * (1 - p1) / len(prev) + p2 * (1 - p2) / len(rec)), 1.0 / rule.window)
    drop = p1 - p2
    if drop > rule.k_se * se:
        return {"previous": p1, "recent": p2, "drop": drop, "se": se, "k_se": rule.k_se, "n": rule.window}
    return None


def check_stagnation(correct: np.ndarray, labels: np.ndarray, rule: AlertRule = AlertRule()) -> dict | None:
    """Stagnation when the accuracy of the last ``window`` scored calls is within ±epsilon of the
    always-HOLD baseline on the same calls (the model adds nothing to "never trade").

    Args: correct bool (n,), labels int (n,) ACTIONS index of the realized direction.

    Returns: {"accuracy", "baseline_hold", "epsilon", "n"} or None (also when n < window).
    """
    c, y = np.asarray(correct, dtype=bool)[-rule.window:], np.asarray(labels)[-rule.window:]
    if len(c) < rule.window:
        return None
    acc, base = float(c.mean()), float(np.mean(y == HOLD))
    if abs(acc - base) <= rule.epsilon:
        return {"accuracy": acc, "baseline_hold": base, "epsilon": rule.epsilon, "n": len(c)}
    return None


def check_retrain_stagnation(metrics: list[float | None], rule: AlertRule = AlertRule()) -> dict | None:
    """Stagnation when none of the last ``rule.retrains`` checkpoints' validation metrics (oldest
    first; None = no metric) beat the best one before them. Needs at least retrains + 1 values."""
    if len(metrics) < rule.retrains + 1:
        return None
    before = [m for m in metrics[:-rule.retrains] if m is not None]
    last = [m for m in metrics[-rule.retrains:] if m is not None]
    if not before:
        return None
    best = max(before)
    if not last or max(last) <= best:
        return {"best_before": best, "last": metrics[-rule.retrains:], "retrains": rule.retrains}
    return None
