"""Calibrated probabilities and expected net returns (edges) in basis points.

Probabilities. A model's trade-horizon logits ``z`` (N, 3) become

    p = w * prior + (1 - w) * softmax(z / T)

with the temperature ``T`` (Guo et al. 2017, "On calibration of modern neural networks") and a
shrinkage weight ``w`` towards the training class prior, both chosen on the validation split by
minimum log-loss over a grid. A model without skill on validation gets ``w = 1``: its forecast is
the class prior, which is no worse than the prior on any data.

Edges. With the trade-horizon classes defined net of the round-trip cost (ml/training/market_train),
the expected net return of acting is ``edge[side] = sum_c p_c * m_c[side]``, where ``m_c[side]`` is
the mean realized net return (bps) of taking ``side`` on training samples of class ``c``. For the
DQN, whose Q-values are already expected net bps, ``edge[side] = s_side * Q[side]`` with a
shrinkage ``s_side`` in [0, 1] fitted on validation by least squares through the origin of the
realized net return on Q (0 when the DQN shows no skill over the prior on validation).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np

from ml.evaluation.stats import log_loss, mean_summary

logger = logging.getLogger(__name__)

BPS = 1e4
SIDES = ("BUY", "SELL")
TEMPERATURES = np.geomspace(0.5, 16.0, 21)
PRIOR_WEIGHTS = np.linspace(0.0, 1.0, 21)
DQN_LOGIT_SCALE_BPS = 20.0  # Q (bps) / this = the DQN's logits before calibration


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float (N, K)."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def dqn_logits(q: np.ndarray) -> np.ndarray:
    """(N, 3) logits [Q_BUY, Q_SELL, 0] / DQN_LOGIT_SCALE_BPS from Q-values (N, 2) in bps."""
    return np.concatenate([q, np.zeros((len(q), 1))], axis=1) / DQN_LOGIT_SCALE_BPS


@dataclass
class Calibration:
    """Fitted calibration of one model (module docstring); JSON-ready via ``to_dict``.

    Attributes:
        temperature: T > 0. prior_weight: w in [0, 1]. prior: training class frequencies (3,).
        class_net_bps: side -> (3,) mean net bps of that side per true class (cnn, transformer).
        q_scale: side -> shrinkage of the DQN's Q-values (dqn only, else None).
        cost_bps: the round-trip cost the labels are net of.
        val_log_loss, val_prior_log_loss: on the validation split, after / for the prior.
        val_gain: the bootstrap summary that decided whether the model beats the prior.
    """

    temperature: float
    prior_weight: float
    prior: list[float]
    class_net_bps: dict[str, list[float]]
    cost_bps: float
    q_scale: dict[str, float] | None = None
    val_log_loss: float | None = None
    val_prior_log_loss: float | None = None
    val_gain: dict | None = None  # mean_summary of the per-sample log-loss gain over the prior

    def probs(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 3) from trade-horizon logits (N, 3)."""
        p = softmax(np.asarray(logits, np.float64) / self.temperature)
        return self.prior_weight * np.asarray(self.prior)[None, :] + (1.0 - self.prior_weight) * p

    def edge_bps(self, probs: np.ndarray, q: np.ndarray | None = None) -> np.ndarray:
        """Expected net bps (N, 2) of [BUY, SELL] from calibrated probs (N, 3), or from Q (N, 2)."""
        if self.q_scale is not None and q is not None:
            return np.asarray(q, np.float64) * np.array([self.q_scale[s] for s in SIDES])[None, :]
        m = np.array([self.class_net_bps[s] for s in SIDES]).T  # (3, 2)
        return np.asarray(probs, np.float64) @ m

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(**data)


def class_net_returns(returns: np.ndarray, labels: np.ndarray, cost_bps: float) -> dict[str, list[float]]:
    """Mean net bps of BUY (r - c) and SELL (-r - c) per true class (ACTIONS order) over labelled
    samples; a class with no sample gets -cost_bps (the cost of a trade with no expected move)."""
    r = np.asarray(returns, np.float64) * BPS
    out = {"BUY": [], "SELL": []}
    for c in range(3):
        sel = (labels == c) & np.isfinite(r)
        mean = float(r[sel].mean()) if sel.any() else 0.0
        out["BUY"].append(mean - cost_bps)
        out["SELL"].append(-mean - cost_bps)
    return out


def fit_calibration(val_logits: np.ndarray, val_labels: np.ndarray, *, prior: np.ndarray,
                    class_net_bps: dict[str, list[float]], cost_bps: float,
                    val_q: np.ndarray | None = None, val_rewards: np.ndarray | None = None,
                    block: int = 1440) -> Calibration:
    """Choose T and w on validation (module docstring); labels IGNORE (< 0) are left out.

    Args:
        val_logits: (N, 3) trade-horizon logits (for the DQN: :func:`dqn_logits`).
        val_labels: int (N,) net labels at the trade horizon.
        prior: (3,) training class frequencies (smoothed).
        val_q, val_rewards: the DQN's Q (N, 2) and realized net bps (N, 2) on validation.
        block: bootstrap block length in samples (default one day of 1-minute samples: the
            model's advantage over the prior drifts with the market regime, so the interval must
            reflect day-to-day variation, not the minute-to-minute noise of overlapping labels).

    Raises:
        ValueError: no labelled validation sample.
    """
    ok = val_labels >= 0
    if not ok.any():
        raise ValueError("no labelled validation sample to calibrate on")
    z, y = np.asarray(val_logits, np.float64)[ok], val_labels[ok]
    prior = np.asarray(prior, np.float64)
    prior_loss = log_loss(np.repeat(prior[None, :], len(y), axis=0), y)
    best = (prior_loss, 1.0, 1.0)
    for t in TEMPERATURES:
        p = softmax(z / t)
        for w in PRIOR_WEIGHTS[:-1]:
            loss = log_loss(w * prior[None, :] + (1 - w) * p, y)
            if loss < best[0] - 1e-9:
                best = (loss, float(t), float(w))
    skill = None
    if best[2] < 1.0:
        p_best = best[2] * prior[None, :] + (1 - best[2]) * softmax(z / best[1])
        # the reference is the better constant forecast on validation (the prior or the uniform
        # distribution): beating the prior only by being flat (a high T) is no information
        uniform_loss = float(np.log(3.0))
        constant = prior[y] if prior_loss <= uniform_loss else np.full(len(y), 1.0 / 3.0)
        gain = (-np.log(np.clip(constant, 1e-12, None))) - (-np.log(np.clip(p_best[np.arange(len(y)), y], 1e-12, None)))
        skill = mean_summary(gain, block=max(1, min(block, len(gain) // 4)), n_boot=1000)
        half = len(gain) // 2
        skill["halves"] = [float(gain[:half].mean()), float(gain[half:].mean())] if half else []
        if skill["lo"] is None or skill["lo"] <= 0 or min(skill["halves"], default=0.0) <= 0:
            best = (prior_loss, 1.0, 1.0)
    q_scale = None
    if val_q is not None and val_rewards is not None:
        q_scale = {}
        for k, side in enumerate(SIDES):
            qk, rk = np.asarray(val_q[:, k], np.float64), np.asarray(val_rewards[:, k], np.float64)
            sel = np.isfinite(rk)
            denom = float(np.sum(qk[sel] ** 2))
            q_scale[side] = float(np.clip(np.sum(qk[sel] * rk[sel]) / denom, 0.0, 1.0)) if denom > 0 else 0.0
        if best[2] == 1.0:  # no demonstrated skill: no edge either
            q_scale = dict.fromkeys(SIDES, 0.0)
    return Calibration(temperature=best[1], prior_weight=best[2], prior=prior.tolist(),
                       class_net_bps=class_net_bps, cost_bps=cost_bps, q_scale=q_scale,
                       val_log_loss=float(best[0]), val_prior_log_loss=float(prior_loss),
                       val_gain=skill)
