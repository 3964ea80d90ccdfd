"""Walk-forward evaluation over the candle history: train on window k, test on window k + 1.

The span ``[start_ms, end_ms)`` is cut into ``folds + 1`` equal, consecutive windows. Fold k
trains a fresh model on window k only (the family's trainer: ``train_cnn`` / ``train_dqn``, no
data at or after the window's end) and tests it on every 1m sample of window k + 1
(``ml.training.dataset.make_dataset``: the same inputs and labels the trainers use; a label's
candle closes before the test window ends). Nothing of window k + 1 is seen in training.

Per fold (test window), with ``r`` the ``horizon_min`` return after each sample and ``fee`` the
taker fee per side:

- ``accuracy`` and ``macro_f1`` of the predicted action against the label (``label_returns``), and
  the always-HOLD baseline's;
- the signal's trades: a BUY earns ``r - 2 fee``, a SELL ``-r - 2 fee``, a HOLD nothing (bps,
  the DQN's reward definition, ml/models/dqn.py); ``trades``, ``win_rate`` (share of trades
  with a positive after-fee result), ``mean_trade_bps``;
- ``pnl_bps``: the sum over non-overlapping samples (every ``horizon_min``-th minute, so each
  minute of the window is held at most once), i.e. the after-fee return of following the signal
  with a constant notional, in bps; ``buy_and_hold_bps`` = ``1e4 (last / first close - 1)`` of
  the window and always-HOLD = 0 for comparison.

Aggregate: the mean and standard deviation over the folds of accuracy, macro F1 and pnl_bps, the
pooled accuracy over all test samples, total trades and total pnl_bps, and the number of folds
whose pnl beats always-HOLD.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from ml.models.output import ACTIONS
from ml.training.cnn_train import macro_f1
from ml.training.dataset import TAKER_FEE, make_dataset

logger = logging.getLogger(__name__)

BPS = 1e4
HOLD = ACTIONS.index("HOLD")
Progress = Callable[[float, str], None]


def windows(start_ms: int, end_ms: int, folds: int) -> list[tuple[int, int]]:
    """``folds + 1`` consecutive [start, end) windows (ms) of equal length, whole minutes.
    Raises ValueError for folds < 1 or a span too short for a minute per window."""
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    step = (end_ms - start_ms) // (folds + 1) // 60_000 * 60_000
    if step <= 0:
        raise ValueError("the span is too short for that many folds")
    return [(start_ms + i * step, start_ms + (i + 1) * step) for i in range(folds + 1)]


def _train(model_name: str, history: dict[str, pd.DataFrame], start_ms: int, end_ms: int, epochs: int,
           num_threads: int):
    if model_name == "cnn":
        from ml.training.cnn_train import train_cnn

        return train_cnn(history, train_start_ms=start_ms, train_end_ms=end_ms, epochs=epochs, num_threads=num_threads)
    if model_name == "dqn":
        from ml.training.dqn_train import train_dqn

        return train_dqn(history, train_start_ms=start_ms, train_end_ms=end_ms, episodes=epochs, num_threads=num_threads)
    raise ValueError(f"walk-forward trains cnn or dqn (the models with candle history), got {model_name!r}")


@torch.no_grad()
def predict_actions(model: torch.nn.Module, data, batch_size: int = 1024) -> np.ndarray:
    """ACTIONS index per sample of a CandleDataset: argmax of the CNN's logits or the DQN's Q-values."""
    model.eval()
    out = []
    for lo in range(0, len(data), batch_size):
        idx = np.arange(lo, min(lo + batch_size, len(data)))
        out.append(model(data.batch(idx))[0].argmax(dim=1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def fold_metrics(actions: np.ndarray, labels: np.ndarray, returns: np.ndarray, closes: tuple[float, float],
                 horizon_min: int, fee: float = TAKER_FEE) -> dict:
    """The test-window figures of one fold (module docstring). ``actions``, ``labels`` (N,)
    ACTIONS indices, ``returns`` (N,) fractions, ``closes`` the window's first and last close (USD)."""
    side = np.where(actions == ACTIONS.index("BUY"), 1.0, np.where(actions == ACTIONS.index("SELL"), -1.0, 0.0))
    traded = side != 0
    trade_bps = BPS * (side * returns - 2 * fee)  # (N,), meaningful where traded
    held = np.zeros(len(actions), dtype=bool)
    held[::max(1, horizon_min)] = True
    hold = np.full(len(labels), HOLD)
    return {
        "n_test": int(len(actions)),
        "accuracy": float(np.mean(actions == labels)) if len(labels) else None,
        "macro_f1": macro_f1(labels, actions) if len(labels) else None,
        "hold_accuracy": float(np.mean(hold == labels)) if len(labels) else None,
        "hold_macro_f1": macro_f1(labels, hold) if len(labels) else None,
        "trades": int(traded.sum()),
        "win_rate": float(np.mean(trade_bps[traded] > 0)) if traded.any() else None,
        "mean_trade_bps": float(trade_bps[traded].mean()) if traded.any() else None,
        "pnl_bps": float(trade_bps[traded & held].sum()),
        "buy_and_hold_bps": float(BPS * (closes[1] / closes[0] - 1.0)),
        "always_hold_bps": 0.0,
        "actions": {a: int(np.sum(actions == i)) for i, a in enumerate(ACTIONS)},
    }


def aggregate(folds: list[dict]) -> dict:
    """Across folds (module docstring)."""
    def stats(key: str) -> dict:
        values = np.array([f[key] for f in folds if f[key] is not None], dtype=np.float64)
        return {"mean": float(values.mean()) if len(values) else None, "std": float(values.std()) if len(values) else None}

    n = sum(f["n_test"] for f in folds)
    return {
        "folds": len(folds), "n_test": n,
        "accuracy": stats("accuracy"), "macro_f1": stats("macro_f1"), "pnl_bps": stats("pnl_bps"),
        "pooled_accuracy": sum((f["accuracy"] or 0.0) * f["n_test"] for f in folds) / n if n else None,
        "trades": sum(f["trades"] for f in folds), "total_pnl_bps": float(sum(f["pnl_bps"] for f in folds)),
        "total_buy_and_hold_bps": float(sum(f["buy_and_hold_bps"] for f in folds)),
        "folds_beating_always_hold": sum(f["pnl_bps"] > 0 for f in folds),
    }


def walk_forward(history: dict[str, pd.DataFrame], *, model_name: str, folds: int, start_ms: int, end_ms: int,
                 epochs: int = 2, num_threads: int = 1, progress: Progress | None = None) -> dict:
    """Run the walk-forward (module docstring). ``history``: timeframe -> candle frame
    (``ml.training.cnn_train.default_training_history``).

    Returns {"model", "windows": [[start, end] ms], "folds": [{"fold", "train": [start, end],
    "test": [start, end], "n_train", "train_seconds", **fold_metrics}], "aggregate": {...}}.
    Raises ValueError for a bad model name, fold count or span, or a window without samples."""
    spans = windows(start_ms, end_ms, folds)
    out = []
    for k in range(folds):
        (train_lo, train_hi), (test_lo, test_hi) = spans[k], spans[k + 1]
        if progress is not None:
            progress(k / folds, f"fold {k + 1}/{folds}: training on window {k + 1}")
        trained = _train(model_name, history, train_lo, train_hi, epochs, num_threads)
        cfg = trained.model.config
        threshold = getattr(cfg, "label_threshold", 2 * TAKER_FEE)
        test = make_dataset(history, start_ms=test_lo, end_ms=test_hi, horizon_min=cfg.horizon_min,
                            threshold=threshold, components=cfg.components)
        actions = predict_actions(trained.model, test)
        closes = _closes(history["1m"], test.times)
        row = {"fold": k + 1, "train": [train_lo, train_hi], "test": [test_lo, test_hi],
               "n_train": int(trained.metrics.get("n_train") or 0),
               "train_seconds": round(float(trained.metrics.get("train_seconds") or 0.0), 3),
               **fold_metrics(actions, test.labels, test.returns, closes, cfg.horizon_min)}
        out.append(row)
        logger.info("walk-forward %s fold %d: accuracy %.3f, pnl %.1f bps", model_name, k + 1, row["accuracy"],
                    row["pnl_bps"])
    if progress is not None:
        progress(1.0, "walk-forward finished")
    return {"model": model_name, "windows": [list(s) for s in spans], "folds": out, "aggregate": aggregate(out)}


def _closes(minute: pd.DataFrame, times: np.ndarray) -> tuple[float, float]:
    """Close (USD) of the 1m candles of the first and last test sample (``open_time`` ms column)."""
    close = minute.set_index("open_time")["close"]
    return float(close.loc[int(times[0])]), float(close.loc[int(times[-1])])
