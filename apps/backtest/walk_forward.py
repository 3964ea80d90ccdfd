"""Walk-forward runs: ``ml.backtest.walk_forward`` over the ETHUSDT candle history (GOGO_DATA_DIR),
stored on a BacktestRun (source ``walk_forward``).

``params``: ``folds`` (default 3), ``model`` ("cnn" or "dqn", default "cnn"), ``epochs`` (CNN epochs
or DQN episodes per fold, default 2), ``window_days`` (default 1). The span is ``[start, end)`` of
the run, else the ``folds + 1`` windows of ``window_days`` ending at the models' training end
(2024-08-08 23:00 UTC, ``ml.training.cnn_train.DEFAULT_TRAIN_END_MS``).

Stored: ``summary["walk_forward"]`` (per-fold and aggregate figures, see the ml module) and
``summary["sha256"]``, the hash of the per-fold figures (training is seeded: two runs on the same
span give the same hash).
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from apps.backtest.models import BacktestRun
from apps.market.convert import datetime_to_ms, ms_to_datetime

logger = logging.getLogger(__name__)

DEFAULTS = {"folds": 3, "model": "cnn", "epochs": 2, "window_days": 1.0}
HASHED = ("fold", "train", "test", "n_train", "n_test", "accuracy", "macro_f1", "trades", "pnl_bps", "actions")


def walk_forward_params(params: dict) -> dict:
    """The run's walk-forward parameters with defaults. Raises ValueError naming a bad field."""
    out = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
    try:
        out["folds"], out["epochs"] = int(out["folds"]), int(out["epochs"])
        out["window_days"] = float(out["window_days"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"folds, epochs, window_days: not numbers ({exc})") from exc
    if not 1 <= out["folds"] <= 50:
        raise ValueError(f"folds: must be in 1..50, got {out['folds']}")
    if out["epochs"] < 1 or out["window_days"] <= 0:
        raise ValueError("epochs must be >= 1 and window_days > 0")
    if out["model"] not in ("cnn", "dqn"):
        raise ValueError(f"model: cnn or dqn (the models with candle history), got {out['model']!r}")
    return out


def walk_forward_execute(run: BacktestRun, progress: Callable[[float, str], None] | None = None) -> None:
    """Run the walk-forward of ``run`` (module docstring) and store it FINISHED. Raises ValueError
    for bad parameters or a span without samples, FileNotFoundError for missing history."""
    from ml.backtest.walk_forward import walk_forward
    from ml.training.cnn_train import DEFAULT_TRAIN_END_MS, default_training_history

    p = walk_forward_params(run.params)
    end_ms = datetime_to_ms(run.end) if run.end else DEFAULT_TRAIN_END_MS
    start_ms = datetime_to_ms(run.start) if run.start else end_ms - int((p["folds"] + 1) * p["window_days"] * 86_400_000)
    history = default_training_history(settings.GOGO_DATA_DIR, symbol="ETHUSDT")

    def report(fraction: float, message: str) -> None:
        BacktestRun.objects.filter(pk=run.pk).update(progress=min(1.0, max(0.0, fraction)), progress_detail=message[:255])
        if progress is not None:
            progress(fraction, message)

    result = walk_forward(history, model_name=p["model"], folds=p["folds"], start_ms=start_ms, end_ms=end_ms,
                          epochs=p["epochs"], progress=report)
    hashed = [{k: f[k] for k in HASHED} for f in result["folds"]]
    run.summary = {"walk_forward": {**result, "params": p, "start": ms_to_datetime(start_ms).isoformat(),
                                    "end": ms_to_datetime(end_ms).isoformat()},
                   "sha256": hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest(),
                   "path": "walk_forward"}
    run.series = {}
    run.status, run.progress, run.finished_at = BacktestRun.Status.FINISHED, 1.0, timezone.now()
    run.save()
    logger.info("walk-forward %s finished: %s", run.pk, result["aggregate"])


def walk_forward_csv(run: BacktestRun) -> str:
    """One CSV row per fold: fold, train/test window (ms), samples, accuracy, macro F1, trades,
    win rate, mean trade and PnL (bps after fees), buy-and-hold (bps)."""
    cols = ("fold", "train_start_ms", "train_end_ms", "test_start_ms", "test_end_ms", "n_train", "n_test", "accuracy",
            "macro_f1", "hold_accuracy", "trades", "win_rate", "mean_trade_bps", "pnl_bps", "buy_and_hold_bps")
    lines = [",".join(cols)]
    for f in (run.summary.get("walk_forward") or {}).get("folds", []):
        row = {**f, "train_start_ms": f["train"][0], "train_end_ms": f["train"][1], "test_start_ms": f["test"][0],
               "test_end_ms": f["test"][1]}
        lines.append(",".join("" if row[c] is None else str(row[c]) for c in cols))
    return "\n".join(lines) + "\n"
