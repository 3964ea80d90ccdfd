"""Train one live market family (cnn, transformer or dqn) in the cascade, calibrate it, measure it.

The same steps as one fold of ``ml/evaluation/walk_forward.py`` (``_train_cascade``), on all the
training samples (``ml/training/market_data.py``) instead of a fold:

1. cross-model groups: the upstream models (already trained, with their calibration) run over the
   samples in cascade order; the model reads ``upstream`` (their calibrated probabilities and
   edges / 100) and, for the DQN, ``cnn_hidden`` (``ml/models/live.py`` builds the same live);
2. time-ordered split: the last ``val_fraction`` of the samples is the validation split; training
   samples whose 60 min label would reach into it are purged;
3. ``ml.training.market_train.fit`` with early stopping on the validation loss;
4. calibration on the validation split (``ml.evaluation.calibration.fit_calibration``: temperature,
   shrinkage to the prior with a bootstrap skill guard, class net returns from training);
5. validation figures: log-loss beside the prior's, and the edge rule (enter when the calibrated
   edge exceeds ``margin_bps``, long only, held ``trade_horizon_min``; ``ml.evaluation.policy``)
   traded over the validation split: net edge per trade (bps, mean with bootstrap interval and
   t-test), net PnL (bps of a constant notional), trades.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ml.evaluation import policy
from ml.evaluation.costs import CostModel
from ml.evaluation.stats import mean_summary
from ml.features.groups import SampleSet
from ml.models.live import CASCADE, attach_serving, serving_of
from ml.models.market import MarketConfig, MarketModel
from ml.models.output import ACTIONS
from ml.training.market_train import calibrate, fit, label_matrix, predict_raw, trade_logits

logger = logging.getLogger(__name__)

MINUTE_MS = 60_000
Progress = Callable[[float, str], None]


@dataclass
class LiveTrained:
    """A trained, calibrated model (``model.serving`` set), its metrics and data range (ms)."""

    model: MarketModel
    metrics: dict
    data_range: tuple[int, int]


def calibrated_outputs(model: MarketModel, samples: SampleSet) -> dict[str, np.ndarray]:
    """{"probs": (N, 3), "edge": (N, 2) bps, "hidden": (N, H)} of a served model over ``samples``
    (which must carry the model's cross-model groups in ``extra``)."""
    raw = predict_raw(model, samples)
    cal = serving_of(model).calibration
    probs = cal.probs(trade_logits(model, raw))
    return {"probs": probs, "edge": cal.edge_bps(probs, raw.get("q")), "hidden": raw["hidden"]}


def cascade_extra(samples: SampleSet, upstream: dict[str, MarketModel], family: str) -> dict[str, np.ndarray]:
    """The cross-model groups ``family`` reads, from the ``upstream`` models (name -> served model,
    each earlier in CASCADE than ``family``) run over ``samples`` in cascade order."""
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for name in [n for n in CASCADE if n in upstream]:
        model = upstream[name]
        own = _extra_from(outputs, serving_of(model).upstream, dict(model.config.extra))
        outputs[name] = calibrated_outputs(model, samples.with_extra(**own) if own else samples)
    widths = {"upstream": 0, "cnn_hidden": 64} if family == "dqn" else {"upstream": 0}
    return _extra_from(outputs, tuple(outputs), widths)


def _extra_from(outputs: dict[str, dict[str, np.ndarray]], names: tuple[str, ...], widths: dict[str, int]
                ) -> dict[str, np.ndarray]:
    extra = {}
    if "upstream" in widths and names:
        extra["upstream"] = np.concatenate(
            [np.concatenate([outputs[n]["probs"], outputs[n]["edge"] / 100.0], axis=1) for n in names],
            axis=1).astype(np.float32)
    if "cnn_hidden" in widths and "cnn" in outputs:
        extra["cnn_hidden"] = outputs["cnn"]["hidden"].astype(np.float32)
    return extra


def time_split(samples: SampleSet, val_fraction: float, purge_min: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of time-ordered ``samples``: the last ``val_fraction`` is
    validation; training samples within ``purge_min`` minutes of its start are dropped.
    Raises ValueError when either split is empty."""
    n_val = max(1, int(round(len(samples) * val_fraction)))
    val = np.arange(len(samples) - n_val, len(samples))
    start = samples.times[val[0]]
    train = np.flatnonzero(samples.times[: len(samples) - n_val] + purge_min * MINUTE_MS < start)
    if not len(train) or not len(val):
        raise ValueError(f"split of {len(samples)} samples left {len(train)} train / {len(val)} validation")
    return train, val


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(ACTIONS)) -> float:
    """Unweighted mean of per-class F1 (a class absent from both gives F1 = 0)."""
    scores = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def train_live_family(family: str, samples: SampleSet, upstream: dict[str, MarketModel], *, epochs: int = 6,
                      patience: int = 2, max_train: int | None = 40_000, val_fraction: float = 0.2,
                      margin_bps: float = 2.0, seed: int = 0, progress: Progress | None = None) -> LiveTrained:
    """Train, calibrate and measure ``family`` (module docstring).

    Args:
        samples: time-ordered training samples (``market_data.training_samples``).
        upstream: the served models before ``family`` in the cascade (name -> model); the ones
            given become its ``upstream`` sources.

    Returns:
        LiveTrained; metrics hold ``calibration``, ``validation`` {"log_loss", "prior_log_loss",
        "net_edge_bps_per_trade" (mean_summary), "net_pnl_bps", "trades", "start_ms", "end_ms"},
        ``val_macro_f1`` (cnn, transformer) or ``val_mean_reward_bps`` (dqn), the training record.

    Raises:
        ValueError: an unknown family, an upstream model not before it, or an empty split.
    """
    if family not in CASCADE:
        raise ValueError(f"unknown family {family!r}; known: {CASCADE}")
    late = [n for n in upstream if n not in CASCADE[:CASCADE.index(family)]]
    if late:
        raise ValueError(f"{late} do not run before {family} in the cascade {CASCADE}")
    cost = CostModel().round_trip_bps()
    extra = cascade_extra(samples, upstream, family)
    data = samples.with_extra(**extra) if extra else samples
    config = MarketConfig(family=family, cost_bps=cost, extra=tuple((k, int(v.shape[1])) for k, v in extra.items()),
                          version=f"{family}-market-1")
    train_idx, val_idx = time_split(data, val_fraction, max(config.horizons_min) + 1)
    train, val = data.subset(train_idx), data.subset(val_idx)
    result = fit(train, val, config, epochs=epochs, patience=patience, seed=seed, max_train=max_train,
                 progress=progress)
    y_val = label_matrix(val, config)[:, config.trade_index]
    cal = calibrate(result.model, train, val)
    model = attach_serving(result.model, cal, tuple(n for n in CASCADE if n in upstream))
    metrics = _metrics(model, val, y_val, result, margin_bps, train, data)
    logger.info("trained %s: best epoch %d, val log-loss %.4f (prior %.4f), %d validation trades, %s bps/trade",
                family, result.best_epoch, cal.val_log_loss, cal.val_prior_log_loss,
                metrics["validation"]["trades"], metrics["validation"]["net_edge_bps_per_trade"]["mean"])
    return LiveTrained(model, metrics, (int(data.times[0]), int(data.times[-1])))


def _metrics(model: MarketModel, val: SampleSet, y_val: np.ndarray, result, margin_bps: float, train: SampleSet,
             data: SampleSet) -> dict:
    config, cal = model.config, serving_of(model).calibration
    h = config.trade_horizon_min
    out = calibrated_outputs(model, val)
    trades = policy.edge_rule(val.times, out["edge"], val.returns[h], cost_bps=config.cost_bps, margin_bps=margin_bps,
                              hold_min=h, end_ms=int(val.times[-1]) + 1, long_only=True)
    ok = y_val >= 0
    validation = {
        "log_loss": cal.val_log_loss, "prior_log_loss": cal.val_prior_log_loss,
        "net_edge_bps_per_trade": mean_summary(trades.net_bps),
        "net_pnl_bps": float(trades.net_bps.sum()), "trades": len(trades), "margin_bps": margin_bps,
        "start_ms": int(val.times[0]), "end_ms": int(val.times[-1]), "samples": len(val),
    }
    metrics = {
        "family": config.family, "validation": validation, "calibration": cal.to_dict(),
        "upstream": list(serving_of(model).upstream),
        "best_epoch": result.best_epoch, "epochs_run": len(result.history), "val_loss": result.val_loss,
        "history": result.history, "train_seconds": round(result.seconds, 2), "label_balance": result.label_balance,
        "samples": {"train": len(train), "validation": len(val), "total": len(data),
                    "session": int(np.sum(np.isnan(data.returns[h]) & np.isfinite(data.returns[1])))},
        "coverage_train": {g: round(c, 4) for g, c in train.coverage().items()},
    }
    if config.family == "dqn":
        metrics["val_mean_reward_bps"] = float(trades.net_bps.mean()) if len(trades) else 0.0
    else:
        metrics["val_macro_f1"] = macro_f1(y_val[ok], out["probs"][ok].argmax(axis=1)) if ok.any() else 0.0
    return metrics
