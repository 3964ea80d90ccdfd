"""Hyper-parameter search over the walk-forward with Optuna (TPE sampler, seeded).

Objective: the orchestrated decisions' total net PnL per day after costs over the purged
walk-forward folds (``ml.evaluation.walk_forward``), so a configuration that never trades scores 0
(always-HOLD) and one that pays fees for noise scores below it. The input groups are built once and
shared by every trial. Every trial is recorded (its parameters, objective and the report's key
figures) and counted: the deflated Sharpe ratio of the best configuration is computed over the
number of trials (Bailey & López de Prado 2014), since picking the best of N raises the bar.

Search space (``SPACE``): the decision margin in bps, the trade horizon, the maximum epochs and the
validation share. The best configuration is returned as a preset: WalkForwardParams field values.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import optuna
import pandas as pd

from ml.evaluation.walk_forward import WalkForwardParams, params_with, redeflate, run_walk_forward
from ml.features.groups import SampleSet, history_samples

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
SPACE = {
    "margin_bps": ("float", 0.0, 20.0),
    "trade_horizon_min": ("categorical", (15, 60)),
    "epochs": ("int", 1, 8),
    "val_fraction": ("float", 0.1, 0.3),
}


def _suggest(trial: optuna.Trial) -> dict:
    out = {}
    for name, spec in SPACE.items():
        if spec[0] == "float":
            out[name] = trial.suggest_float(name, spec[1], spec[2])
        elif spec[0] == "int":
            out[name] = trial.suggest_int(name, spec[1], spec[2])
        else:
            out[name] = trial.suggest_categorical(name, list(spec[1]))
    return out


def search(primary: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame] | None, base: WalkForwardParams,
           *, n_trials: int, seed: int = 0, timeout_s: float | None = None, samples: SampleSet | None = None,
           progress: Progress | None = None, live: tuple[dict, dict] | None = None) -> dict:
    """Run ``n_trials`` walk-forwards with parameters drawn from ``SPACE`` (module docstring).

    Args:
        base: the fixed parameters (span, folds, models, costs); searched fields override it.
        timeout_s: stop starting new trials after this many seconds (Optuna's study timeout).
        live: the live checkpoints baseline (``run_walk_forward``).

    Returns:
        {"trials": [{"number", "params", "objective", "orchestrator_trades", "orchestrator_net_pnl_bps",
        "seconds"}], "best": {"params", "objective", "number"}, "preset": {field: value},
        "n_trials": int, "seconds": float, "trials_per_hour": float, "best_report": the best trial's report}.

    Raises:
        ValueError: n_trials < 1, or the base parameters are invalid.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    started = time.perf_counter()
    if samples is None:
        samples = history_samples(primary, reference, start_ms=base.start_ms, end_ms=base.end_ms,
                                  horizons_min=base.horizons_min)
    records: list[dict] = []
    reports: dict[int, dict] = {}

    def objective(trial: optuna.Trial) -> float:
        t0 = time.perf_counter()
        chosen = _suggest(trial)
        params = params_with(base, **chosen, trials=trial.number + 1)
        report = run_walk_forward(primary, reference, params, samples=samples, live=live)
        orch = report["total"]["orchestrator"]
        value = float(orch["net_pnl_bps_per_day"] or 0.0)
        reports[trial.number] = report
        records.append({"number": trial.number, "params": chosen, "objective": value,
                        "orchestrator_trades": orch["trades"], "orchestrator_net_pnl_bps": orch["net_pnl_bps"],
                        "seconds": round(time.perf_counter() - t0, 1)})
        if progress is not None:
            progress(len(records) / n_trials, f"trial {trial.number + 1}/{n_trials}: {value:+.2f} bps/day")
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, timeout=timeout_s)
    seconds = time.perf_counter() - started
    best = study.best_trial
    preset = {**{k: v for k, v in base.to_dict().items() if k in ("folds", "scheme", "models", "margin_bps",
                                                                   "trade_horizon_min", "epochs", "val_fraction")},
              **best.params}
    return {"trials": records, "best": {"params": best.params, "objective": best.value, "number": best.number},
            "preset": preset, "n_trials": len(records), "seconds": round(seconds, 1),
            "trials_per_hour": round(len(records) / seconds * 3600.0, 2) if seconds > 0 else None,
            "best_report": redeflate(reports[best.number], len(records))}
