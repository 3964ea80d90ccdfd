"""Train the frame-sequence transformer on a recorded order-book session (explicit loop, CPU).

Samples: every second ``i`` of the session whose three input tails (1s ETH, 1s BTC, COB) have at
least ``min_completeness`` of their rows present and whose label second ``i + H`` exists.
Label: ``r = close[i + H] / close[i] - 1`` with H = ``label_horizon_s``; BUY if r > threshold,
SELL if r < -threshold, else HOLD. Return targets: the same return at each of ``horizons_s``, in bps.
Split: time-ordered, the last ``val_fraction`` for validation, H seconds dropped between.

Loss: class-weighted cross-entropy + ``return_weight`` x Huber loss on the returns (bps).
Validation metric: macro F1 of the classes on the validation seconds.

Honest scope: the default session is ~8 minutes (≈ 360 samples, strongly overlapping windows),
enough to check that the model trains end to end, not to learn a market.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ml.models.output import ACTIONS
from ml.models.transformer import BPS, SEQUENCE_COMPONENTS, FrameTransformer, TransformerConfig, sequence_tokens
from ml.training.cnn_train import Progress, _distribution, _report, _split, default_num_threads, macro_f1
from ml.training.dataset import label_returns
from ml.training.determinism import deterministic_training
from ml.training.sequence_data import SessionSequences

logger = logging.getLogger(__name__)


@dataclass
class TransformerTrainResult:
    """Trained model (eval mode), metrics, and (start_ms, end_ms) of the seconds read."""

    model: FrameTransformer
    metrics: dict[str, Any]
    data_range: tuple[int, int]


@dataclass
class SequenceSamples:
    """Tokens (N, T, 97), labels (N,), returns (N, len(horizons)) in bps, times (N,) ms."""

    tokens: np.ndarray
    labels: np.ndarray
    returns: np.ndarray
    times: np.ndarray


def make_sequence_samples(seq: SessionSequences, config: TransformerConfig,
                          min_completeness: float = 0.9) -> SequenceSamples:
    """Samples of a session (module docstring). Raises ValueError when none qualifies."""
    t, s = config.seq_len, len(seq.ts)
    longest = max(config.label_horizon_s, *config.horizons_s)
    ok = np.ones(s, dtype=bool)
    for name in SEQUENCE_COMPONENTS:
        ok &= seq.present[name][:, -t:].mean(axis=1) >= min_completeness
    ok &= np.arange(s) + longest < s
    ok &= np.isfinite(seq.close) & (np.nan_to_num(seq.close) > 0)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        raise ValueError(f"no sample in {s} seconds with complete {t}-second tails")

    def ret(h: int) -> np.ndarray:
        return seq.close[idx + h] / seq.close[idx] - 1.0

    tokens = sequence_tokens({n: seq.windows[n][idx] for n in SEQUENCE_COMPONENTS}, t)  # (N, T, 97)
    returns = np.stack([ret(h) for h in config.horizons_s], axis=1) * BPS
    return SequenceSamples(tokens=tokens, labels=label_returns(ret(config.label_horizon_s), config.label_threshold),
                           returns=returns.astype(np.float32), times=seq.ts[idx])


def train_transformer(seq: SessionSequences, config: TransformerConfig | None = None, *,
                      val_fraction: float = 0.2, epochs: int = 15, batch_size: int = 32,
                      lr: float = 1e-3, weight_decay: float = 1e-2, return_weight: float = 0.05,
                      seed: int = 0, num_threads: int | None = None,
                      progress: Progress | None = None) -> TransformerTrainResult:
    """Train a FrameTransformer on the seconds of ``seq`` (module docstring).

    Returns:
        TransformerTrainResult; metrics: n_samples, n_train, n_val, label_distribution,
        val_macro_f1 (the validation metric), val_accuracy, val_return_mae_bps, val_loss,
        train_loss, baseline_hold_accuracy, epochs, seed, train_seconds, history.

    Raises:
        ValueError: epochs < 1 or too few samples.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    config = config or TransformerConfig()
    started = time.perf_counter()
    with deterministic_training(seed=seed, num_threads=num_threads or default_num_threads()):
        data = make_sequence_samples(seq, config)
        train_idx, val_idx = _split(len(data.labels), val_fraction, embargo=config.label_horizon_s)
        counts = np.bincount(data.labels[train_idx], minlength=len(ACTIONS)).astype(np.float64)
        weight = torch.tensor(len(train_idx) / (len(ACTIONS) * np.maximum(counts, 1.0)), dtype=torch.float32)
        x, y, r = (torch.from_numpy(a) for a in (data.tokens, data.labels, data.returns))
        model = FrameTransformer(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator().manual_seed(seed)
        _report(progress, 0.0, f"{len(train_idx)} train / {len(val_idx)} val seconds")
        history = []
        for epoch in range(epochs):
            model.train()
            order = train_idx[torch.randperm(len(train_idx), generator=gen).numpy()]
            losses = []
            for lo in range(0, len(order), batch_size):
                idx = order[lo:lo + batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                loss = _loss(model, x[idx], y[idx], r[idx], weight, return_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
            val_loss, val_pred, val_ret = _evaluate(model, x[val_idx], y[val_idx], r[val_idx], weight, return_weight)
            history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val_loss,
                            "val_macro_f1": macro_f1(data.labels[val_idx], val_pred)})
            _report(progress, (epoch + 1) / epochs, f"epoch {epoch + 1}/{epochs} val_loss={val_loss:.4f}")
    model.eval()
    val_labels = data.labels[val_idx]
    metrics = {
        "n_samples": len(data.labels), "n_train": len(train_idx), "n_val": len(val_idx),
        "label_distribution": {"train": _distribution(data.labels[train_idx]), "val": _distribution(val_labels)},
        "val_macro_f1": macro_f1(val_labels, val_pred), "val_accuracy": float(np.mean(val_pred == val_labels)),
        "val_return_mae_bps": float(np.abs(val_ret - data.returns[val_idx]).mean()),
        "val_loss": val_loss, "train_loss": history[-1]["train_loss"],
        "baseline_hold_accuracy": float(np.mean(val_labels == ACTIONS.index("HOLD"))),
        "epochs": epochs, "seed": seed, "train_seconds": time.perf_counter() - started,
        "train_period_ms": [int(data.times[train_idx[0]]), int(data.times[train_idx[-1]])],
        "val_period_ms": [int(data.times[val_idx[0]]), int(data.times[val_idx[-1]])],
        "history": history,
    }
    data_range = (int(seq.ts[0]) - (config.seq_len - 1) * 1000, int(seq.ts[-1]) + 1000)
    return TransformerTrainResult(model=model, metrics=metrics, data_range=data_range)


def _loss(model: FrameTransformer, x: torch.Tensor, y: torch.Tensor, r: torch.Tensor,
          weight: torch.Tensor, return_weight: float) -> torch.Tensor:
    logits, returns, _ = model(x)  # (B, 3), (B, K)
    return F.cross_entropy(logits, y, weight=weight) + return_weight * F.smooth_l1_loss(returns, r, beta=5.0)


@torch.no_grad()
def _evaluate(model: FrameTransformer, x: torch.Tensor, y: torch.Tensor, r: torch.Tensor, weight: torch.Tensor,
              return_weight: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Loss, predicted classes (N,) and predicted returns (N, K) bps in eval mode."""
    model.eval()
    logits, returns, _ = model(x)
    loss = F.cross_entropy(logits, y, weight=weight) + return_weight * F.smooth_l1_loss(returns, r, beta=5.0)
    return float(loss.item()), logits.argmax(dim=1).numpy(), returns.numpy()
