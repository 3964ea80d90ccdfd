"""Purged, embargoed walk-forward over the candle history: train, calibrate, trade, report.

Folds (López de Prado, AFML ch. 7). The span ``[start, end)`` is cut into ``folds + 1`` equal
windows. Test fold k (k = 1..K) is window k; it trains on every earlier window ("expanding") or on
the ``rolling_windows`` windows just before it ("rolling"). Inside the training data:

- purge: a training or validation sample whose longest label horizon ends at or after the start
  of the next split (validation, test) is dropped, so no label overlaps the data it is judged on;
- embargo: the ``embargo_min`` minutes after every earlier test fold are left out of training (for
  schemes that train on data after a test window; with forward-only folds it also spaces the
  folds' serial correlation);
- validation: the last ``val_fraction`` of the purged training samples, after a purge gap; it
  drives early stopping, calibration and the mixture weights. Nothing of the test window is seen.

Models (``ml/models/market.py``) are trained in the cascade order cnn -> transformer -> dqn, each
reading every input group plus the calibrated outputs of the ones before (same second).

Per fold and in total, for every model, for the orchestrated decisions (the mixture's edge rule)
and for the baselines, the figures of ``docs/evaluation.md`` (the JSON printed by
``manage.py backtest --walk-forward K --json``). PnL is in bps of a constant notional after the
round-trip cost of ``ml.evaluation.costs.CostModel``; ``hold_pnl_bps`` (always-HOLD) is 0.
``prior_log_loss`` is the log-loss of the training class frequencies (the forecast a model with
no skill can make without seeing the test labels) on the same test samples.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ml.evaluation import policy
from ml.evaluation.calibration import Calibration, softmax
from ml.evaluation.costs import CostModel
from ml.evaluation.stats import (
    accuracy_vs_majority,
    annualised_ratio,
    binomial_p_value,
    brier_score,
    confusion_matrix,
    deflated_sharpe_ratio,
    log_loss,
    max_drawdown,
    mean_summary,
    prior_probs,
    reliability_curve,
)
from ml.features.groups import INPUT_GROUPS, SampleSet, history_samples
from ml.models.live import CASCADE
from ml.models.market import HORIZONS_MIN, MarketConfig, MarketModel
from ml.training.market_train import calibrate, fit, net_labels, predict_raw, trade_logits

logger = logging.getLogger(__name__)

MINUTE_MS = 60_000
DAY_MS = 86_400_000
MAX_EQUITY_POINTS = 500
MAX_TRADES_TABLE = 200
Progress = Callable[[float, str], None]


@dataclass
class WalkForwardParams:
    """Settings of one walk-forward run (see the module docstring); JSON-ready via ``to_dict``."""

    start_ms: int
    end_ms: int
    folds: int = 6
    scheme: str = "expanding"
    rolling_windows: int = 2
    models: tuple[str, ...] = CASCADE
    horizons_min: tuple[int, ...] = HORIZONS_MIN
    trade_horizon_min: int = 60
    embargo_min: int = 60
    val_fraction: float = 0.2
    epochs: int = 6
    patience: int = 2
    max_train: int | None = 20_000
    margin_bps: float = 2.0
    long_only: bool = True
    costs: CostModel = field(default_factory=CostModel)
    seed: int = 0
    trials: int = 1
    importance_samples: int = 3000
    symbol: str = "ETHUSDT"
    reference: str = "BTCUSDT"

    def __post_init__(self) -> None:
        if self.folds < 1:
            raise ValueError(f"folds must be >= 1, got {self.folds}")
        if self.scheme not in ("expanding", "rolling"):
            raise ValueError(f"scheme must be 'expanding' or 'rolling', got {self.scheme!r}")
        unknown = [m for m in self.models if m not in CASCADE]
        if unknown or not self.models:
            raise ValueError(f"unknown models {unknown or '()'}; known: {list(CASCADE)}")
        if self.trade_horizon_min not in self.horizons_min:
            raise ValueError(f"trade horizon {self.trade_horizon_min} not in {self.horizons_min}")
        if not 0.05 <= self.val_fraction <= 0.5:
            raise ValueError(f"val_fraction must be in [0.05, 0.5], got {self.val_fraction}")
        if self.epochs < 1 or self.trials < 1:
            raise ValueError("epochs and trials must be >= 1")
        if self.end_ms - self.start_ms < (self.folds + 1) * DAY_MS / 24:
            raise ValueError("the span is too short: each window needs at least one hour")

    @property
    def purge_min(self) -> int:
        return max(self.horizons_min)

    @property
    def cost_bps(self) -> float:
        return self.costs.round_trip_bps()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["costs"] = {**self.costs.to_dict(), "round_trip_bps": self.cost_bps}
        d["start"], d["end"] = _iso(self.start_ms), _iso(self.end_ms)
        d["purge_min"] = self.purge_min
        return d


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def fold_windows(start_ms: int, end_ms: int, folds: int) -> list[tuple[int, int]]:
    """``folds + 1`` consecutive [start, end) windows (ms) of equal length in whole minutes."""
    step = (end_ms - start_ms) // (folds + 1) // MINUTE_MS * MINUTE_MS
    if step <= 0:
        raise ValueError("the span is too short for that many folds")
    return [(start_ms + i * step, start_ms + (i + 1) * step) for i in range(folds + 1)]


def split_indices(times: np.ndarray, windows: list[tuple[int, int]], k: int, p: WalkForwardParams
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) sample indices of test fold ``k`` (1-based), purged and embargoed.

    ``times`` are the samples' instants (ms, sorted). Test: samples in window k. Training: samples in
    the training windows whose label (longest horizon) ends before the test window starts, minus
    the embargo after each earlier test fold; validation: its last ``val_fraction``, with the
    training part purged against the validation start."""
    test_lo, test_hi = windows[k]
    first = 0 if p.scheme == "expanding" else max(0, k - p.rolling_windows)
    train_lo = windows[first][0]
    purge = p.purge_min * MINUTE_MS
    cand = np.flatnonzero((times >= train_lo) & (times + purge < test_lo))
    for j in range(1, k):  # earlier test folds: embargo after each
        lo, hi = windows[j][1], windows[j][1] + p.embargo_min * MINUTE_MS
        cand = cand[~((times[cand] >= lo) & (times[cand] < hi))]
    test = np.flatnonzero((times >= test_lo) & (times < test_hi))
    if len(cand) < 10 or not len(test):
        raise ValueError(f"fold {k}: {len(cand)} training and {len(test)} test samples")
    n_val = max(1, int(round(len(cand) * p.val_fraction)))
    val = cand[-n_val:]
    val_start = times[val[0]]
    train = cand[:-n_val]
    train = train[times[train] + purge < val_start]
    if not len(train):
        raise ValueError(f"fold {k}: no training sample left after purging")
    return train, val, test


@dataclass
class _Fitted:
    name: str
    model: MarketModel
    calibration: Calibration
    outputs: dict[str, dict[str, np.ndarray]]  # split -> {"probs", "edge", "hidden", "logits"|"q"}
    fit_info: dict
    sets: dict[str, SampleSet]  # split -> the samples with this model's cross-model groups


def _outputs(model: MarketModel, cal: Calibration | None, samples: SampleSet,
             permute: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    raw = predict_raw(model, samples, permute=permute)
    logits = trade_logits(model, raw)
    out = {**raw, "trade_logits": logits}
    if cal is not None:
        out["probs"] = cal.probs(logits)
        out["edge"] = cal.edge_bps(out["probs"], raw.get("q"))
    return out


def _upstream(fitted: list[_Fitted], split: str) -> dict[str, np.ndarray]:
    """Cross-model groups for the next model: calibrated probs and edges (bps / 100) of the models
    before it, and the CNN's hidden state."""
    extra = {}
    if fitted:
        extra["upstream"] = np.concatenate(
            [np.concatenate([f.outputs[split]["probs"], f.outputs[split]["edge"] / 100.0], axis=1) for f in fitted],
            axis=1).astype(np.float32)
    cnn = next((f for f in fitted if f.name == "cnn"), None)
    if cnn is not None:
        extra["cnn_hidden"] = cnn.outputs[split]["hidden"].astype(np.float32)
    return extra


def _train_cascade(p: WalkForwardParams, splits: dict[str, SampleSet], progress: Progress | None,
                   base: float, span: float) -> list[_Fitted]:
    fitted: list[_Fitted] = []
    names = [m for m in CASCADE if m in p.models]
    for j, name in enumerate(names):
        sets = {s: (x.with_extra(**_upstream(fitted, s)) if fitted else x) for s, x in splits.items()}
        extra_widths = tuple((k, int(v.shape[1])) for k, v in sets["train"].extra.items()
                             if name == "dqn" or k != "cnn_hidden")
        config = MarketConfig(family=name, horizons_min=p.horizons_min, trade_horizon_min=p.trade_horizon_min,
                              cost_bps=p.cost_bps, extra=extra_widths, version=f"{name}-market-1")
        if progress is not None:
            progress(base + span * j / len(names), f"training {name}")
        result = fit(sets["train"], sets["validation"], config, epochs=p.epochs, patience=p.patience,
                     seed=p.seed, max_train=p.max_train)
        cal = calibrate(result.model, sets["train"], sets["validation"])
        outs = {s: _outputs(result.model, cal, x) for s, x in sets.items()}
        info = {"best_epoch": result.best_epoch, "epochs_run": len(result.history), "val_loss": result.val_loss,
                "train_seconds": round(result.seconds, 2), "label_balance": result.label_balance,
                "calibration": cal.to_dict()}
        fitted.append(_Fitted(name, result.model, cal, outs, info, sets))
        logger.info("walk-forward %s: best epoch %d, val loss %.4f, T=%.2f w=%.2f", name, result.best_epoch,
                    result.val_loss, cal.temperature, cal.prior_weight)
    return fitted


def _curve(trades: policy.Trades) -> list[list[float]]:
    if not len(trades):
        return []
    eq = np.cumsum(trades.net_bps)
    step = max(1, len(eq) // MAX_EQUITY_POINTS)
    pts = [[int(t), round(float(v), 3)] for t, v in zip(trades.exit_ms[::step], eq[::step], strict=True)]
    if pts[-1][0] != int(trades.exit_ms[-1]):
        pts.append([int(trades.exit_ms[-1]), round(float(eq[-1]), 3)])
    return pts


def _lite(trades: policy.Trades, days: float, costs: CostModel) -> dict:
    n = len(trades)
    net = float(trades.net_bps.sum()) if n else 0.0
    return {
        "trades": n, "net_pnl_bps": round(net, 3), "net_pnl_bps_per_day": round(net / days, 3) if days > 0 else None,
        "net_edge_bps_per_trade": mean_summary(trades.net_bps) if n else None,
        "hit_rate": float(np.mean(trades.gross_bps > 0)) if n else None,
        "max_drawdown_bps": round(max_drawdown(np.concatenate([[0.0], np.cumsum(trades.net_bps)])), 3),
        "costs_bps": costs.breakdown(n), "equity": _curve(trades),
    }


def trade_report(trades: policy.Trades, days: float, costs: CostModel, hold_min: int, n_trials: int) -> dict:
    """The trading part of a PERF dict (docs/evaluation.md) for ``trades`` over ``days``."""
    n = len(trades)
    out = _lite(trades, days, costs)
    wins = int(np.sum(trades.gross_bps > 0))
    out.update({
        "gross_edge_bps_per_trade": mean_summary(trades.gross_bps) if n else None,
        "hold_pnl_bps": 0.0,
        "hit_rate_p_value": binomial_p_value(wins, n) if n else None,
        "trades_table": [{"entry_ms": int(a), "exit_ms": int(b), "side": "BUY" if s > 0 else "SELL",
                          "gross_bps": round(float(g), 3), "net_bps": round(float(v), 3), "reason": r}
                         for a, b, s, g, v, r in zip(trades.entry_ms, trades.exit_ms, trades.side, trades.gross_bps,
                                                     trades.net_bps, trades.reasons, strict=True)][:MAX_TRADES_TABLE],
    })
    span_s = days * 86400.0
    for kind in ("sharpe", "sortino", "calmar"):
        out[kind] = (annualised_ratio(kind, trades.net_bps / 1e4, period_seconds=hold_min * 60.0, span_seconds=span_s)
                     if n >= 2 else {"value": None, "annualised": False, "reason": f"{n} trades"})
    out["deflated_sharpe"], out["sharpe_stats"] = None, None
    if n >= 3 and float(np.std(trades.net_bps)) > 0:
        r = trades.net_bps
        z = (r - r.mean()) / r.std()
        out["sharpe_stats"] = {"sharpe_per_trade": float(np.mean(r) / np.std(r, ddof=1)), "n": n,
                               "skew": float(np.mean(z ** 3)), "kurtosis": float(np.mean(z ** 4))}
        out["deflated_sharpe"] = _deflated(out["sharpe_stats"], n_trials)
    return out


def _deflated(st: dict, n_trials: int) -> float:
    return deflated_sharpe_ratio(st["sharpe_per_trade"], n_obs=st["n"], n_trials=n_trials, skew=st["skew"],
                                 kurtosis=st["kurtosis"])


def redeflate(report: dict, n_trials: int) -> dict:
    """Recompute every deflated Sharpe ratio of a report over ``n_trials`` configurations (after a
    search picked it as the best of ``n_trials``); returns the report, changed in place."""
    report["params"]["trials"] = n_trials
    for scope in (*report["folds"], report["total"]):
        for perf in (*scope["models"].values(), scope["orchestrator"]):
            if perf.get("sharpe_stats"):
                perf["deflated_sharpe"] = _deflated(perf["sharpe_stats"], n_trials)
        scope["deflated_sharpe"] = scope["orchestrator"].get("deflated_sharpe")
    return report


def forecast_report(probs: np.ndarray, samples: SampleSet, p: WalkForwardParams, prior: np.ndarray,
                    raw_logits: np.ndarray | None, horizons: tuple[int, ...]) -> dict:
    """The forecast part of a PERF dict: log-loss and Brier at the trade horizon beside the prior's,
    the confusion matrix, reliability curve and accuracy per horizon beside the majority rate."""
    y = net_labels(samples.returns[p.trade_horizon_min], p.cost_bps)
    ok = y >= 0
    if not ok.any():
        return {"log_loss": None, "prior_log_loss": None}
    pr = probs[ok]
    yy = y[ok]
    acc = {}
    for k, h in enumerate(horizons):
        yh = net_labels(samples.returns[h], p.cost_bps)
        okh = yh >= 0
        if raw_logits is None:  # a mixture: its calibrated forecast exists at the trade horizon only
            acc[f"{h}m"] = (accuracy_vs_majority(yh[okh], probs[okh].argmax(axis=1))
                            if h == p.trade_horizon_min and okh.any() else None)
            continue
        pred = raw_logits[:, k].argmax(axis=1) if raw_logits.ndim == 3 else raw_logits.argmax(axis=1)
        acc[f"{h}m"] = accuracy_vs_majority(yh[okh], pred[okh]) if okh.any() else None
    return {
        "log_loss": log_loss(pr, yy), "prior_log_loss": log_loss(np.repeat(prior[None, :], len(yy), 0), yy),
        "brier": brier_score(pr, yy),
        "confusion": {"labels": ["BUY", "SELL", "HOLD"], "matrix": confusion_matrix(yy, pr.argmax(axis=1))},
        "reliability": reliability_curve(pr, yy), "accuracy": acc, "samples": int(ok.sum()),
    }


def permutation_importance(fitted: _Fitted, p: WalkForwardParams) -> dict[str, dict[str, dict[str, float | None]]]:
    """Increase in trade-horizon log-loss when one input group's rows are shuffled across test
    samples (values and mask together; Breiman 2001): {"calibrated": group -> increase of the
    calibrated forecast's log-loss (0 for a model calibrated to the prior), "raw": group -> increase
    of the network's own softmax log-loss (what the network reads)}. None for a group absent from
    the test data."""
    test = fitted.sets["test"]
    rng = np.random.default_rng(p.seed)
    n = len(test)
    sub = np.sort(rng.choice(n, min(n, p.importance_samples), replace=False))
    s = test.subset(sub)
    y = net_labels(s.returns[p.trade_horizon_min], p.cost_bps)
    ok = y >= 0
    if not ok.any():
        return {"calibrated": {}, "raw": {}}

    def losses(out: dict[str, np.ndarray]) -> tuple[float, float]:
        return log_loss(out["probs"][ok], y[ok]), log_loss(softmax(out["trade_logits"][ok]), y[ok])

    base_cal, base_raw = losses(_outputs(fitted.model, fitted.calibration, s))
    cal: dict[str, float | None] = {}
    raw: dict[str, float | None] = {}
    for g in fitted.model.names:
        if g in INPUT_GROUPS and not s.mask[g].any():
            cal[g] = raw[g] = None
            continue
        c, r = losses(_outputs(fitted.model, fitted.calibration, s, permute={g: rng.permutation(len(s))}))
        cal[g], raw[g] = round(c - base_cal, 6), round(r - base_raw, 6)
    return {"calibrated": cal, "raw": raw}


def live_edges(live: dict[str, tuple[MarketModel, Calibration, tuple[str, ...]]], samples: SampleSet) -> np.ndarray:
    """The live checkpoints' mean calibrated edge (N, 2) bps of [BUY, SELL] over ``samples``: each
    served model (model, calibration, upstream names) run in cascade order, its ``upstream`` group
    the calibrated [probs, edge / 100] of the models it names and the DQN's ``cnn_hidden`` the CNN's
    hidden state, as live. Raises KeyError when a model's upstream model is not in ``live``."""
    outs: dict[str, dict[str, np.ndarray]] = {}
    edges = []
    for name in [n for n in CASCADE if n in live] + [n for n in live if n not in CASCADE]:
        model, cal, upstream = live[name]
        extra = {}
        if "upstream" in model.config.extra_groups:
            extra["upstream"] = np.concatenate([np.concatenate([outs[u]["probs"], outs[u]["edge"] / 100.0], axis=1)
                                                for u in upstream], axis=1).astype(np.float32)
        if "cnn_hidden" in model.config.extra_groups:
            extra["cnn_hidden"] = outs["cnn"]["hidden"].astype(np.float32)
        outs[name] = _outputs(model, cal, samples.with_extra(**extra) if extra else samples)
        edges.append(outs[name]["edge"])
    return np.mean(edges, axis=0)


def _past_returns(samples: SampleSet, all_close: pd.Series, minutes: int) -> np.ndarray:
    """Return over the ``minutes`` before each sample (its own close vs the close ``minutes`` earlier)."""
    then = samples.times - minutes * MINUTE_MS
    prev = all_close.reindex(then).to_numpy()
    return samples.close / prev - 1.0


def _evaluate_fold(k: int, p: WalkForwardParams, samples: SampleSet, windows, close_by_time: pd.Series,
                   progress: Progress | None, live: tuple[dict, dict] | None = None) -> tuple[dict, dict]:
    tr, va, te = split_indices(samples.times, windows, k, p)
    splits = {"train": samples.subset(tr), "validation": samples.subset(va), "test": samples.subset(te)}
    base, span = (k - 1) / p.folds, 1.0 / p.folds
    fitted = _train_cascade(p, splits, progress, base, span * 0.8)
    test = splits["test"]
    test_lo, test_hi = windows[k]
    days = (test_hi - test_lo) / DAY_MS
    h = p.trade_horizon_min
    r_test, r_val = test.returns[h], splits["validation"].returns[h]
    val_end = int(windows[k][0])
    cost = p.cost_bps
    fold = {"fold": k, "start": _iso(test_lo), "end": _iso(test_hi), "days": round(days, 3),
            "train": {"start": _iso(int(splits["train"].times[0])), "end": _iso(int(splits["train"].times[-1])),
                      "samples": len(tr)},
            "validation": {"start": _iso(int(splits["validation"].times[0])),
                           "end": _iso(int(splits["validation"].times[-1])), "samples": len(va)},
            "models": {}}
    raw_pool: dict = {"models": {}, "days": days}
    val_net: dict[str, np.ndarray] = {}
    y_train = net_labels(splits["train"].returns[h], cost)
    prior = prior_probs(y_train[y_train >= 0])
    for f in fitted:
        t_out = f.outputs["test"]
        trades = policy.edge_rule(test.times, t_out["edge"], r_test, cost_bps=cost, margin_bps=p.margin_bps,
                                  hold_min=h, end_ms=test_hi, long_only=p.long_only)
        v_trades = policy.edge_rule(splits["validation"].times, f.outputs["validation"]["edge"], r_val, cost_bps=cost,
                                    margin_bps=p.margin_bps, hold_min=h, end_ms=val_end, long_only=p.long_only)
        val_net[f.name] = v_trades.net_bps
        raw = t_out.get("logits") if "logits" in t_out else t_out["trade_logits"]
        perf = {**trade_report(trades, days, p.costs, h, p.trials),
                **forecast_report(t_out["probs"], test, p, prior, raw,
                                  p.horizons_min if "logits" in t_out else (h,)),
                "buy_and_hold_bps": None, "calibration": f.calibration.to_dict(), "training": f.fit_info}
        perf["importance"] = permutation_importance(f, p)
        perf["validation_trades"] = len(v_trades)
        fold["models"][f.name] = perf
        raw_pool["models"][f.name] = {"trades": trades, "probs": t_out["probs"], "test": test}
    weights, why = policy.mixture_weights(val_net)
    if fitted:
        total_w = sum(weights.values())
        mix_edge = sum(weights[f.name] * f.outputs["test"]["edge"] for f in fitted) if total_w > 0 \
            else np.full((len(test), 2), -np.inf)
        mix_probs = (sum(weights[f.name] * f.outputs["test"]["probs"] for f in fitted) if total_w > 0
                     else np.repeat(prior[None, :], len(test), 0))
        o_trades = policy.edge_rule(test.times, mix_edge, r_test, cost_bps=cost, margin_bps=p.margin_bps, hold_min=h,
                                    end_ms=test_hi, long_only=p.long_only)
    else:
        mix_probs = np.repeat(prior[None, :], len(test), 0)
        o_trades = policy.edge_rule(test.times, np.full((len(test), 2), -np.inf), r_test, cost_bps=cost,
                                    margin_bps=p.margin_bps, hold_min=h, end_ms=test_hi)
    orch = {**trade_report(o_trades, days, p.costs, h, p.trials),
            **forecast_report(mix_probs, test, p, prior, None, p.horizons_min),
            "weights": weights, "weight_reasons": why}
    bh = policy.buy_and_hold(test.times, test.close, cost)
    mom = policy.momentum_rule(test.times, _past_returns(test, close_by_time, h), r_test, cost_bps=cost, hold_min=h,
                               end_ms=test_hi, long_only=p.long_only)
    rnd = policy.random_rule(test.times, r_test, len(o_trades), cost_bps=cost, hold_min=h, end_ms=test_hi,
                             long_only=p.long_only, seed=p.seed + k)
    hold = policy.Trades.build([], [], test.times, r_test, cost, h, [])
    fold["baselines"] = {"always_hold": _lite(hold, days, p.costs), "buy_and_hold": _lite(bh, days, p.costs),
                         "momentum": _lite(mom, days, p.costs), "random": _lite(rnd, days, p.costs)}
    pool_baselines = {"always_hold": hold, "buy_and_hold": bh, "momentum": mom, "random": rnd}
    if live is not None:
        models, data_ranges = live
        live_trades = policy.edge_rule(test.times, live_edges(models, test), r_test, cost_bps=cost,
                                       margin_bps=p.margin_bps, hold_min=h, end_ms=test_hi, long_only=p.long_only)
        overlap = [n for n, (lo, hi) in data_ranges.items() if lo < test_hi and hi > test_lo]
        fold["baselines"]["live_checkpoint"] = {
            **_lite(live_trades, days, p.costs), "models": sorted(models),
            "in_sample": bool(overlap),
            "note": (f"in sample: {', '.join(overlap)} trained on data overlapping this test window" if overlap
                     else "out of sample: trained before this test window")}
        pool_baselines["live_checkpoint"] = live_trades
    bh_bps = float(bh.net_bps.sum()) if len(bh) else 0.0
    for perf in (*fold["models"].values(), orch):
        perf["buy_and_hold_bps"] = round(bh_bps, 3)
    fold["orchestrator"] = orch
    fold["deflated_sharpe"] = orch["deflated_sharpe"]
    fold["hit_rate_p_value"] = orch["hit_rate_p_value"]
    fold["costs_bps"] = orch["costs_bps"]
    raw_pool.update(orchestrator={"trades": o_trades, "probs": mix_probs, "test": test}, prior=prior,
                    baselines=pool_baselines)
    return fold, raw_pool


def _concat(trades: list[policy.Trades]) -> policy.Trades:
    if not trades:
        return policy.Trades.build([], [], np.zeros(0, np.int64), np.zeros(0), 0.0, 0, [])
    return policy.Trades(index=np.concatenate([t.index for t in trades]), side=np.concatenate([t.side for t in trades]),
                         gross_bps=np.concatenate([t.gross_bps for t in trades]),
                         net_bps=np.concatenate([t.net_bps for t in trades]),
                         entry_ms=np.concatenate([t.entry_ms for t in trades]),
                         exit_ms=np.concatenate([t.exit_ms for t in trades]),
                         reasons=[r for t in trades for r in t.reasons])


def _total(p: WalkForwardParams, pools: list[dict]) -> dict:
    days = sum(x["days"] for x in pools)
    h = p.trade_horizon_min

    def pooled(entries: list[dict], horizons) -> dict:
        trades = _concat([e["trades"] for e in entries])
        out = trade_report(trades, days, p.costs, h, p.trials)
        lls, pls, ns = [], [], []
        for e, pool in zip(entries, pools, strict=True):
            fr = forecast_report(e["probs"], e["test"], p, pool["prior"], None, horizons)
            if fr.get("log_loss") is not None:
                lls.append(fr["log_loss"] * fr["samples"])
                pls.append(fr["prior_log_loss"] * fr["samples"])
                ns.append(fr["samples"])
        n = sum(ns)
        out["log_loss"] = sum(lls) / n if n else None
        out["prior_log_loss"] = sum(pls) / n if n else None
        out["hold_pnl_bps"] = 0.0
        return out

    models = {}
    for name in pools[0]["models"] if pools else []:
        models[name] = pooled([x["models"][name] for x in pools], (h,))
    orch = pooled([x["orchestrator"] for x in pools], (h,))
    baselines = {b: _lite(_concat([x["baselines"][b] for x in pools]), days, p.costs)
                 for b in pools[0]["baselines"]} if pools else {}
    bh = baselines["buy_and_hold"]["net_pnl_bps"]
    for perf in (*models.values(), orch):
        perf["buy_and_hold_bps"] = bh
    return {"days": round(days, 3), "models": models, "orchestrator": orch, "baselines": baselines,
            "deflated_sharpe": orch["deflated_sharpe"], "hit_rate_p_value": orch["hit_rate_p_value"],
            "costs_bps": orch["costs_bps"],
            "folds_within_one_bps_per_day": None}


def run_walk_forward(primary: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame] | None,
                     params: WalkForwardParams, *, progress: Progress | None = None,
                     samples: SampleSet | None = None, live: tuple[dict, dict] | None = None) -> dict:
    """Run the purged walk-forward (module docstring) and return the report dict.

    Args:
        primary, reference: candle frames per timeframe (ml.data.history.load_history).
        samples: prebuilt samples of the span (else built from the frames).
        progress: called with (fraction in [0, 1], message).
        live: the live checkpoints as a baseline: (name -> (model, calibration, upstream names),
            name -> (start_ms, end_ms) of its training data); each fold reports their decisions
            under ``baselines["live_checkpoint"]``, marked in sample where the data overlap.

    Raises:
        ValueError: bad parameters, or a fold without training or test samples.
    """
    started = time.perf_counter()
    if progress is not None:
        progress(0.0, "building input groups from the candle history")
    if samples is None:
        samples = history_samples(primary, reference, start_ms=params.start_ms, end_ms=params.end_ms,
                                  horizons_min=params.horizons_min)
    windows = fold_windows(params.start_ms, params.end_ms, params.folds)
    minute = primary["1m"]
    close_by_time = pd.Series(minute["close"].to_numpy(), index=minute["open_time"].to_numpy() + MINUTE_MS - 1000)
    folds, pools = [], []
    for k in range(1, params.folds + 1):
        fold, pool = _evaluate_fold(k, params, samples, windows, close_by_time, progress, live)
        folds.append(fold)
        pools.append(pool)
        logger.info("walk-forward fold %d/%d: orchestrator %d trades, %.1f bps", k, params.folds,
                    fold["orchestrator"]["trades"], fold["orchestrator"]["net_pnl_bps"])
    total = _total(params, pools)
    total["folds_within_one_bps_per_day"] = sum(
        1 for f in folds if f["orchestrator"]["net_pnl_bps"] >= -1.0 * f["days"])
    total["wall_seconds"] = round(time.perf_counter() - started, 1)
    total["coverage"] = samples.coverage()
    if progress is not None:
        progress(1.0, "walk-forward finished")
    return {"params": params.to_dict(), "folds": folds, "total": total}


def params_with(params: WalkForwardParams, **changes) -> WalkForwardParams:
    """A copy of ``params`` with fields changed (validated again)."""
    return replace(params, **changes)
