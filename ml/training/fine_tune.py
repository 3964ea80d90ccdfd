"""Online fine-tune of a live market model (``ml/models/market.py``) on recent training cases
(``ml/training/cases.py``), and its evaluation on held-out cases.

A case's input is the package the model stored when it predicted (``ml.models.live.package``:
every group it read, cross-model groups included, with its ``mask_<group>`` flag), so a case is
one row of a SampleSet (:func:`case_samples`). Labels come from the net outcomes: a case whose
BUY reward (bps after the round trip) is positive is BUY, whose SELL reward is positive is SELL,
else HOLD (the cost-aware labels of ``ml.training.market_train.net_labels``); a paper round trip
(only the taken side's reward known) is that side when it paid, else HOLD.

Per family (the same metric names as the full trainers, so the registry compares like with like):

- cnn, transformer: class-weighted cross-entropy of the trade-horizon logits; metric
  ``val_macro_f1`` of the calibrated probabilities' argmax on the held-out cases.
- dqn: Huber loss between Q(s, BUY/SELL) and the known net rewards (bps), NaN entries masked;
  metric ``val_mean_reward_bps``, the mean reward of the greedy action over the held-out cases
  whose reward for that action is known (HOLD = 0).

The live calibration is kept (copied with the model): the held-out cases judge the result, so
they cannot also fit it. Explicit loop, AdamW, a small learning rate, seeded.
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

from ml.evaluation.calibration import dqn_logits
from ml.features.groups import SampleSet
from ml.models.live import serving_of
from ml.models.market import MarketModel
from ml.models.output import ACTIONS
from ml.training.cases import SOURCE_PAPER, TrainingCases
from ml.training.determinism import deterministic_training
from ml.training.live_train import macro_f1
from ml.training.market_train import IGNORE

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, float, float | None], None]  # (epoch, total, loss, metric)
METRIC = {"cnn": "val_macro_f1", "dqn": "val_mean_reward_bps", "transformer": "val_macro_f1"}
BUY, SELL, HOLD = 0, 1, 2


@dataclass
class FineTuneResult:
    """The fine-tuned copy (eval mode, with the live calibration), its metrics."""

    model: Any
    metrics: dict[str, Any]


def case_samples(model: MarketModel, cases: TrainingCases) -> SampleSet:
    """The cases as a SampleSet of the groups ``model`` reads (one row each, masks from the
    packages). Raises ValueError when the packages lack a group (another model's layout)."""
    missing = [n for n in model.names if n not in cases.arrays or f"mask_{n}" not in cases.arrays]
    if missing:
        raise ValueError(f"training cases lack the groups {missing} the {model.config.family} model reads")
    n = len(cases)
    return SampleSet(times=cases.times, values={g: cases.arrays[g].astype(np.float32) for g in model.names},
                     index={g: np.arange(n, dtype=np.int64) for g in model.names},
                     mask={g: cases.arrays[f"mask_{g}"].reshape(n).astype(bool) for g in model.names},
                     close=np.zeros(n), returns={})


def case_labels(cases: TrainingCases) -> np.ndarray:
    """int64 (N,) ACTIONS index from the net outcomes (module docstring); IGNORE where unknown."""
    r = cases.rewards
    out = np.full(len(cases), HOLD, dtype=np.int64)
    out[r[:, BUY] > 0] = BUY
    out[r[:, SELL] > 0] = SELL
    paper = cases.source == SOURCE_PAPER
    taken = cases.target[paper]
    paid = r[paper, taken] > 0 if paper.any() else np.zeros(0, bool)
    out[paper] = np.where(paid, taken, HOLD)
    out[~np.isfinite(r[:, :2]).any(axis=1)] = IGNORE
    return out


@torch.no_grad()
def _raw(model: MarketModel, samples: SampleSet, batch_size: int = 256) -> dict[str, np.ndarray]:
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for lo in range(0, len(samples), batch_size):
        x, m = samples.batch(np.arange(lo, min(lo + batch_size, len(samples))), tuple(model.names))
        for k, v in model(x, m).items():
            parts.setdefault(k, []).append(v.double().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def case_actions(model: MarketModel, cases: TrainingCases) -> np.ndarray:
    """int64 (N,) the action the model calls on each case: BUY / SELL where that side's calibrated
    edge is positive and the larger, else HOLD (no trade)."""
    if not len(cases):
        return np.zeros(0, dtype=np.int64)
    raw = _raw(model, case_samples(model, cases))
    cal = serving_of(model).calibration
    q = raw.get("q")
    logits = dqn_logits(q) if q is not None else raw["logits"][:, model.config.trade_index]
    edge = cal.edge_bps(cal.probs(logits), q)  # (N, 2)
    return np.concatenate([edge, np.zeros((len(edge), 1))], axis=1).argmax(axis=1)


def evaluate(model_name: str, model: MarketModel, cases: TrainingCases) -> float:
    """The family's validation metric of ``model`` on ``cases`` (module docstring); NaN when no
    case can be scored."""
    if not len(cases):
        return float("nan")
    if model_name == "dqn":
        action = case_actions(model, cases)
        reward = np.where(action == HOLD, 0.0, cases.rewards[np.arange(len(action)), action])
        known = np.isfinite(reward)
        return float(reward[known].mean()) if known.any() else float("nan")
    raw = _raw(model, case_samples(model, cases))
    probs = serving_of(model).calibration.probs(raw["logits"][:, model.config.trade_index])
    y = case_labels(cases)
    ok = y >= 0
    return macro_f1(y[ok], probs[ok].argmax(axis=1)) if ok.any() else float("nan")


def _loss(model: MarketModel, out: dict[str, torch.Tensor], labels: torch.Tensor, rewards: torch.Tensor,
          weight: torch.Tensor) -> torch.Tensor:
    if model.config.family == "dqn":
        known = torch.isfinite(rewards)
        return F.huber_loss(out["q"][known] / 100.0, rewards[known] / 100.0)
    return F.cross_entropy(out["logits"][:, model.config.trade_index], labels, weight=weight, ignore_index=IGNORE)


def fine_tune(model_name: str, live: MarketModel, train: TrainingCases, val: TrainingCases, *,
              epochs: int = 3, batch_size: int = 64, lr: float = 2e-4, weight_decay: float = 1e-2, seed: int = 0,
              num_threads: int = 1, progress: Progress | None = None) -> FineTuneResult:
    """Fine-tune a COPY of ``live`` (left untouched) on ``train`` and evaluate it on ``val``.

    Returns:
        FineTuneResult; metrics: <METRIC[model_name]> (the held-out metric), n_train, n_val,
        train_loss, epochs, lr, seed, train_seconds, samples_per_second, sources, history.

    Raises:
        ValueError: epochs < 1, fewer than 2 training cases, an unknown model family, or cases
            of another input layout.
    """
    if model_name not in METRIC:
        raise ValueError(f"unknown model family {model_name!r}")
    if epochs < 1 or len(train) < 2:
        raise ValueError(f"need epochs >= 1 and 2+ training cases; got {epochs}, {len(train)}")
    started = time.perf_counter()
    model = copy.deepcopy(live).cpu()
    samples, labels = case_samples(model, train), case_labels(train)
    rewards = train.rewards[:, :2].astype(np.float32)  # (N, 2) net bps of BUY, SELL
    counts = np.bincount(labels[labels >= 0], minlength=len(ACTIONS)).astype(np.float64)
    weight = torch.tensor(max(1, int(counts.sum())) / (len(ACTIONS) * np.maximum(counts, 1.0)), dtype=torch.float32)
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
                x, m = samples.batch(idx, tuple(model.names))
                loss = _loss(model, model(x, m), torch.from_numpy(labels[idx]), torch.from_numpy(rewards[idx]), weight)
                if not torch.isfinite(loss):  # a batch without a known label or reward
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
        "labels": {a: int(c) for a, c in zip(ACTIONS, counts, strict=True)},
        "history": history,
    })
