"""Online fine-tune of a live model on recent training cases (ml/training/cases.py), and its
evaluation on held-out cases with the model family's validation metric.

Per family (the same metric names as the full trainers, so the registry compares like with like):

- cnn: class-weighted cross-entropy on the case targets; metric ``val_macro_f1``.
- transformer: class-weighted cross-entropy on the classes (the return head is left as is);
  metric ``val_macro_f1``.
- dqn: each case is a one-step decision (the horizon reward already holds its outcome, so no
  bootstrapped next state): Huber loss between Q(s, a) and the known rewards (bps), NaN entries
  masked; metric ``val_mean_reward_bps``, the mean reward of the greedy action over the held-out
  cases whose reward for that action is known (HOLD = 0).

Explicit loop, AdamW, a small learning rate (the model starts from the live weights), seeded.
"""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ml.features.normalize import normalize_candles, normalize_cob
from ml.models.output import ACTIONS
from ml.training.cases import TrainingCases
from ml.training.cnn_train import macro_f1
from ml.training.determinism import deterministic_training

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, float, float | None], None]  # (epoch, total, loss, metric)
METRIC = {"cnn": "val_macro_f1", "dqn": "val_mean_reward_bps", "transformer": "val_macro_f1"}


@dataclass
class FineTuneResult:
    """The fine-tuned copy (eval mode), its metrics and the seconds it took."""

    model: Any
    metrics: dict[str, Any]


def model_inputs(model_name: str, model: torch.nn.Module, cases: TrainingCases, idx: np.ndarray) -> Any:
    """The batch a family's forward takes for cases ``idx``: a dict component -> normalized
    (B, T, C) tensor (cnn, dqn) or tokens (B, T, 97) (transformer)."""
    if model_name == "transformer":
        from ml.models.transformer import sequence_tokens

        names = ("primary_1s", "reference_1s", "cob")
        return torch.from_numpy(sequence_tokens({n: cases.arrays[n][idx] for n in names}, model.config.seq_len))
    out = {}
    for name in model.config.components:
        raw = cases.arrays[name][idx]
        out[name] = torch.from_numpy(normalize_cob(raw) if name == "cob" else normalize_candles(raw))
    return out


def _forward(model_name: str, model: torch.nn.Module, x: Any) -> torch.Tensor:
    """Logits (cnn, transformer) or Q-values in bps (dqn), (B, 3)."""
    return model(x)[0]


@torch.no_grad()
def evaluate(model_name: str, model: torch.nn.Module, cases: TrainingCases, batch_size: int = 256) -> float:
    """The family's validation metric of ``model`` on ``cases`` (module docstring); NaN when no
    case can be scored."""
    model.eval()
    preds = []
    for lo in range(0, len(cases), batch_size):
        idx = np.arange(lo, min(lo + batch_size, len(cases)))
        preds.append(_forward(model_name, model, model_inputs(model_name, model, cases, idx)).argmax(dim=1).numpy())
    if not preds:
        return float("nan")
    pred = np.concatenate(preds)
    if model_name == "dqn":
        reward = cases.rewards[np.arange(len(pred)), pred]
        known = np.isfinite(reward)
        return float(reward[known].mean()) if known.any() else float("nan")
    return macro_f1(cases.target, pred)


def _loss(model_name: str, out: torch.Tensor, cases: TrainingCases, idx: np.ndarray,
          weight: torch.Tensor) -> torch.Tensor:
    if model_name == "dqn":
        from ml.models.dqn import huber_td_loss

        r = torch.from_numpy(cases.rewards[idx])  # (B, 3) bps, NaN unknown
        known = torch.isfinite(r)
        return huber_td_loss(out[known], r[known], torch.ones(int(known.sum())))
    return F.cross_entropy(out, torch.from_numpy(cases.target[idx]), weight=weight)


def fine_tune(model_name: str, live: torch.nn.Module, train: TrainingCases, val: TrainingCases, *,
              epochs: int = 3, batch_size: int = 64, lr: float = 2e-4, weight_decay: float = 1e-2, seed: int = 0,
              num_threads: int = 1, progress: Progress | None = None) -> FineTuneResult:
    """Fine-tune a COPY of ``live`` (left untouched) on ``train`` and evaluate it on ``val``.

    Returns:
        FineTuneResult; metrics: <METRIC[model_name]> (the held-out metric), n_train, n_val,
        train_loss, epochs, lr, seed, train_seconds, samples_per_second, sources, history.

    Raises:
        ValueError: epochs < 1, fewer than 2 training cases, or an unknown model family.
    """
    if model_name not in METRIC:
        raise ValueError(f"unknown model family {model_name!r}")
    if epochs < 1 or len(train) < 2:
        raise ValueError(f"need epochs >= 1 and 2+ training cases; got {epochs}, {len(train)}")
    started = time.perf_counter()
    model = copy.deepcopy(live).cpu()
    counts = np.bincount(train.target, minlength=len(ACTIONS)).astype(np.float64)
    weight = torch.tensor(len(train) / (len(ACTIONS) * np.maximum(counts, 1.0)), dtype=torch.float32)
    history, seen = [], 0
    with deterministic_training(seed=seed, num_threads=num_threads, deterministic=False):
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator().manual_seed(seed)
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(train), generator=gen).numpy()
            losses = []
            for lo in range(0, len(order), batch_size):
                idx = order[lo:lo + batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                loss = _loss(model_name, _forward(model_name, model, model_inputs(model_name, model, train, idx)),
                             train, idx, weight)
                if not torch.isfinite(loss):  # a batch of paper cases without a known reward
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                losses.append(loss.item())
                seen += len(idx)
            metric = evaluate(model_name, model, val)
            row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else None, METRIC[model_name]: metric}
            history.append(row)
            if progress is not None:
                progress(epoch + 1, epochs, row["train_loss"] or 0.0, metric)
    model.eval()
    seconds = time.perf_counter() - started
    return FineTuneResult(model, {
        METRIC[model_name]: history[-1][METRIC[model_name]], "n_train": len(train), "n_val": len(val),
        "train_loss": history[-1]["train_loss"], "epochs": epochs, "lr": lr, "seed": seed, "train_seconds": seconds,
        "samples_per_second": seen / seconds if seconds > 0 else None,
        "sources": {"train": train.counts(), "val": val.counts()},
        "period_ms": {"train": [int(train.times[0]), int(train.times[-1])],
                      "val": [int(val.times[0]), int(val.times[-1])] if len(val) else None},
        "history": history,
    })
