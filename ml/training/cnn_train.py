"""Train the multi-timeframe CNN on candle history (explicit loop, CPU).

Split: samples are in time order; the last ``val_fraction`` of them is the validation set and
the ``horizon_min`` training samples just before it are dropped (their labels would look into
the validation period). No shuffling crosses the split.

Loss: cross-entropy weighted by inverse training-class frequency (``n / (3 * n_c)``), so the
majority HOLD class does not drown BUY and SELL. Optimizer: AdamW.

Default run: ETHUSDT 1m/1h/1d history up to 2024-08-08 23:00 UTC; the recorded order-book
session (2024-08-08 23:54 → 2024-08-09 00:05) stays out of sample.

    python -m ml.training.cnn_train --out var/checkpoints/cnn_ethusdt.pt
"""
from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ml.data.history import history_files, load_ohlcv_csv
from ml.features.base_input import WINDOW
from ml.features.rings import TIMEFRAME_MS
from ml.market.recording import default_data_dir
from ml.models.checkpoint import save_checkpoint
from ml.models.cnn import CnnConfig, MultiTimeframeCNN
from ml.models.output import ACTIONS
from ml.training.dataset import (
    HISTORY_COMPONENTS,
    HOLD,
    TAKER_FEE,
    CandleDataset,
    label_returns,
    make_dataset,
)
from ml.training.determinism import deterministic_training

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TRAIN_END_MS",
    "TAKER_FEE",
    "TrainResult",
    "default_num_threads",
    "default_training_history",
    "label_returns",
    "macro_f1",
    "make_dataset",
    "train_cnn",
]

DEFAULT_TRAIN_END_MS = 1_723_158_000_000  # 2024-08-08 23:00:00 UTC
Progress = Callable[[float, str], None]


@dataclass
class TrainResult:
    """A trained model (eval mode), its metrics and the candle open times it saw.

    ``data_range`` is (start_ms, end_ms): first sample's oldest input candle open time and the
    end bound of the data used (no candle at or after ``end_ms`` was read).
    """

    model: MultiTimeframeCNN
    metrics: dict[str, Any]
    data_range: tuple[int, int]


def default_training_history(data_dir: str | Path | None = None,
                             symbol: str = "ETHUSDT") -> dict[str, pd.DataFrame]:
    """Load the 1m, 1h and 1d candle history of ``symbol`` (see ml.data.history.history_files).

    Raises:
        FileNotFoundError: a history file is missing.
        ValueError: a file fails validation.
    """
    files = history_files(data_dir or default_data_dir(), symbol)
    return {tf: load_ohlcv_csv(path) for tf, path in files.items()}


def default_num_threads() -> int:
    """Half the CPU cores, at least 1 (1 on the 2-core target machine).

    Training shares the machine with the live pipeline (web, replay, inference). Measured on
    2 cores: 2 threads train ~1.4x faster when the machine is idle, but 3-8x slower than 1
    thread when other processes are busy (OpenMP threads wait on each other).
    """
    return max(1, (os.cpu_count() or 1) // 2)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(ACTIONS)) -> float:
    """Unweighted mean of per-class F1 (a class absent from both gives F1 = 0)."""
    scores = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def _distribution(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(ACTIONS))
    return {a: int(n) for a, n in zip(ACTIONS, counts, strict=False)}


def _split(n: int, val_fraction: float, embargo: int) -> tuple[np.ndarray, np.ndarray]:
    """Time-ordered train / validation indices with ``embargo`` samples dropped between."""
    n_val = round(n * val_fraction)
    n_train = n - n_val - embargo
    if n_val < 1 or n_train < 1:
        raise ValueError(f"{n} samples are too few for val_fraction={val_fraction}")
    return np.arange(n_train), np.arange(n - n_val, n)


@torch.no_grad()
def _evaluate(model: MultiTimeframeCNN, data: CandleDataset, weight: torch.Tensor,
              batch_size: int) -> tuple[float, np.ndarray]:
    """Mean weighted loss and predicted classes (N,) over ``data`` in eval mode."""
    model.eval()
    preds, loss_sum, weight_sum = [], 0.0, 0.0
    for lo in range(0, len(data), batch_size):
        idx = np.arange(lo, min(lo + batch_size, len(data)))
        y = torch.from_numpy(data.labels[idx])
        logits, _ = model(*data.batch_shared(idx))  # (B, 3)
        loss_sum += F.cross_entropy(logits, y, weight=weight, reduction="sum").item()
        weight_sum += weight[y].sum().item()
        preds.append(logits.argmax(dim=1).numpy())
    return loss_sum / weight_sum, np.concatenate(preds)


def train_cnn(history: dict[str, pd.DataFrame], config: CnnConfig | None = None, *,
              train_end_ms: int = DEFAULT_TRAIN_END_MS, train_start_ms: int | None = None,
              val_fraction: float = 0.15, epochs: int = 4, batch_size: int = 256,
              lr: float = 2e-3, weight_decay: float = 1e-2, seed: int = 0,
              num_threads: int | None = None, progress: Progress | None = None) -> TrainResult:
    """Train a MultiTimeframeCNN on samples with 1m candle open time in [start, end).

    Args:
        history: timeframe -> candle frame (default_training_history()).
        config: model and label config (default CnnConfig()); only primary_1m/1h/1d supported.
        train_end_ms: no candle at or after this time (ms, UTC) is used, inputs or labels.
        train_start_ms: earliest sample time (default: as early as full windows allow).
        num_threads: torch CPU threads while training (default: default_num_threads());
            the previous setting is restored afterwards.
        progress: called with (fraction done in [0, 1], message) after setup and each epoch.

    Returns:
        TrainResult; metrics keys: n_samples, n_train, n_val, n_embargo, label_distribution
        ({"train", "val"} -> class counts), class_weights, val_accuracy, val_macro_f1,
        val_loss, train_loss, baseline_hold_accuracy, baseline_hold_macro_f1,
        val_pred_distribution, train_period_ms, val_period_ms, epochs,
        batch_size, horizon_min, label_threshold, train_seconds, history (per epoch).

    Raises:
        ValueError: epochs < 1, too few samples, or a config component without history.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    config = config or CnnConfig()
    started = time.perf_counter()
    with deterministic_training(seed=seed, num_threads=num_threads or default_num_threads()):
        data = make_dataset(history, start_ms=train_start_ms or 0, end_ms=train_end_ms,
                            horizon_min=config.horizon_min, threshold=config.label_threshold,
                            components=config.components)
        train_idx, val_idx = _split(len(data), val_fraction, embargo=config.horizon_min)
        train, val = data.subset(train_idx), data.subset(val_idx)
        counts = np.bincount(train.labels, minlength=len(ACTIONS)).astype(np.float64)
        weight = torch.tensor(len(train) / (len(ACTIONS) * np.maximum(counts, 1.0)),
                              dtype=torch.float32)
        model = MultiTimeframeCNN(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator().manual_seed(seed)
        _report(progress, 0.0, f"{len(train)} train / {len(val)} val samples")

        history_rows = []
        for epoch in range(epochs):
            train_loss = _train_epoch(model, optimizer, train, weight, batch_size, gen)
            val_loss, val_pred = _evaluate(model, val, weight, batch_size)
            row = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                   "val_accuracy": float(np.mean(val_pred == val.labels))}
            history_rows.append(row)
            logger.info("epoch %d/%d %s", epoch + 1, epochs, row)
            _report(progress, (epoch + 1) / epochs,
                    f"epoch {epoch + 1}/{epochs} train_loss={train_loss:.4f} "
                    f"val_loss={val_loss:.4f} val_acc={row['val_accuracy']:.3f}")

    model.eval()
    metrics = {
        "n_samples": len(data), "n_train": len(train), "n_val": len(val),
        "n_embargo": len(data) - len(train) - len(val),
        "label_distribution": {"train": _distribution(train.labels),
                               "val": _distribution(val.labels)},
        "class_weights": dict(zip(ACTIONS, weight.tolist(), strict=False)),
        "val_accuracy": float(np.mean(val_pred == val.labels)),
        "val_macro_f1": macro_f1(val.labels, val_pred),
        "val_loss": val_loss,
        "train_loss": history_rows[-1]["train_loss"],
        "baseline_hold_accuracy": float(np.mean(val.labels == HOLD)),
        "baseline_hold_macro_f1": macro_f1(val.labels, np.full(len(val), HOLD)),
        "val_pred_distribution": _distribution(val_pred),
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
        "horizon_min": config.horizon_min, "label_threshold": config.label_threshold,
        "train_period_ms": [int(train.times[0]), int(train.times[-1])],
        "val_period_ms": [int(val.times[0]), int(val.times[-1])],
        "train_seconds": time.perf_counter() - started,
        "history": history_rows,
    }
    oldest_input = min(int(data.last_open[name][0])
                       - (WINDOW - 1) * TIMEFRAME_MS[HISTORY_COMPONENTS[name]]
                       for name in config.components)
    return TrainResult(model=model, metrics=metrics, data_range=(oldest_input, train_end_ms))


def _train_epoch(model: MultiTimeframeCNN, optimizer: torch.optim.Optimizer,
                 train: CandleDataset, weight: torch.Tensor, batch_size: int,
                 gen: torch.Generator) -> float:
    """One pass over ``train`` in a seeded random order; returns the mean weighted loss."""
    model.train()
    order = torch.randperm(len(train), generator=gen).numpy()
    loss_sum, seen = 0.0, 0
    for lo in range(0, len(train), batch_size):
        idx = order[lo:lo + batch_size]
        if len(idx) < 2:  # BatchNorm cannot train on a single sample
            continue
        logits, _ = model(*train.batch_shared(idx))  # (B, 3)
        loss = F.cross_entropy(logits, torch.from_numpy(train.labels[idx]), weight=weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(idx)
        seen += len(idx)
    return loss_sum / max(seen, 1)


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def main(argv: list[str] | None = None) -> None:
    """CLI: train with defaults and save a checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("var/checkpoints/cnn_ethusdt.pt"))
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--symbol", default="ETHUSDT")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    history = default_training_history(args.data_dir, args.symbol)
    result = train_cnn(history, epochs=args.epochs, seed=args.seed,
                       progress=lambda f, msg: print(f"[{f:4.0%}] {msg}", flush=True))
    digest = save_checkpoint(args.out, result.model, result.model.config, result.metrics,
                             result.data_range)
    keys = ("n_samples", "n_train", "n_val", "val_accuracy", "val_macro_f1", "val_loss",
            "baseline_hold_accuracy", "train_seconds")
    for key in keys:
        print(f"{key}: {result.metrics[key]}")
    print(f"label_distribution: {result.metrics['label_distribution']}")
    print(f"checkpoint: {args.out} ({args.out.stat().st_size} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
