"""A tiny real training run: completes, is seeded, reports the documented metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.models.cnn import CnnConfig
from ml.training.cnn_train import macro_f1, train_cnn

M = 60_000
START = 1_722_988_800_000  # 2024-08-07 00:00 UTC
END = START + 400 * M
METRIC_KEYS = {
    "n_samples", "n_train", "n_val", "n_embargo", "label_distribution", "class_weights",
    "val_accuracy", "val_macro_f1", "val_loss", "train_loss", "baseline_hold_accuracy",
    "baseline_hold_macro_f1", "val_pred_distribution", "epochs", "batch_size", "lr", "seed",
    "horizon_min", "label_threshold", "train_period_ms", "val_period_ms", "train_seconds",
    "history",
}
SMALL = CnnConfig(channels=(8, 8), encoder_size=8, hidden_size=16)


def test_macro_f1_on_a_hand_example() -> None:
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 2, 0])
    # F1: class 0 = 2*1/(2+1+1) = .5, class 1 = 2/(2+1) = 2/3, class 2 = 4/(4+1) = .8
    assert macro_f1(y_true, y_pred) == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_a_tiny_training_run_reports_the_documented_metrics(eth_history: dict) -> None:
    calls: list[tuple[float, str]] = []
    result = train_cnn(eth_history, SMALL, train_start_ms=START, train_end_ms=END, epochs=1,
                       batch_size=64, seed=1, progress=lambda f, m: calls.append((f, m)))
    m = result.metrics
    assert set(m) == METRIC_KEYS
    assert m["n_samples"] == 395 and m["n_embargo"] == 5
    assert m["n_val"] == round(395 * 0.15) and m["n_train"] + m["n_val"] + 5 == 395
    assert m["train_period_ms"][1] < m["val_period_ms"][0]  # validation is the later part
    assert sum(m["label_distribution"]["val"].values()) == m["n_val"]
    assert 0.0 <= m["val_accuracy"] <= 1.0 and 0.0 <= m["val_macro_f1"] <= 1.0
    assert m["baseline_hold_accuracy"] == pytest.approx(m["label_distribution"]["val"]["HOLD"]
                                                       / m["n_val"])
    assert np.isfinite(m["val_loss"]) and m["train_seconds"] > 0
    assert calls[-1][0] == 1.0 and "epoch 1/1" in calls[-1][1]
    assert result.data_range[1] == END
    assert result.data_range[0] == START - 299 * 86_400_000 - 86_400_000  # oldest 1d input
    assert not result.model.training


def test_training_is_seeded(eth_history: dict) -> None:
    runs = [train_cnn(eth_history, SMALL, train_start_ms=START, train_end_ms=END, epochs=1,
                      batch_size=64, seed=7) for _ in range(2)]
    assert runs[0].metrics["val_loss"] == runs[1].metrics["val_loss"]
    for key, value in runs[0].model.state_dict().items():
        torch.testing.assert_close(runs[1].model.state_dict()[key], value, rtol=0, atol=0)
