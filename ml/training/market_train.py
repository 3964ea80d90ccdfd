"""Train a model family of ``ml/models/market.py`` on a SampleSet, with early stopping.

Targets (López de Prado, AFML ch. 3, fixed-horizon labels made cost-aware): for each horizon h
the return ``r_h = close[t+h] / close[t] - 1`` is labelled BUY when ``r_h > c``, SELL when
``r_h < -c``, else HOLD, with ``c`` the round-trip cost (``config.cost_bps``: taker fee both
ways plus the spread). A sample whose return is unknown (end of data, gap) has no label at that
horizon and adds no loss.

Losses: cross-entropy averaged over the horizons (cnn, transformer), unweighted, so the
probabilities stay calibratable; Huber loss of Q(s, BUY) and Q(s, SELL) against the realized net
returns ``r - c`` and ``-r - c`` in bps (dqn, both actions are known offline).

Early stopping: the loss at the trade horizon on the validation split after every epoch; the
state of the best epoch is kept and training stops after ``patience`` epochs without a better one.
"""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ml.features.groups import SampleSet
from ml.models.market import MarketConfig, MarketModel
from ml.models.output import ACTIONS
from ml.training.determinism import deterministic_training

logger = logging.getLogger(__name__)

BPS = 1e4
BUY, SELL, HOLD = (ACTIONS.index(a) for a in ("BUY", "SELL", "HOLD"))
IGNORE = -100  # cross_entropy's ignore_index: no label at this horizon
Progress = Callable[[float, str], None]


def net_labels(returns: np.ndarray, cost_bps: float) -> np.ndarray:
    """int64 labels (ACTIONS index) of fractional returns (N,) net of a round trip of ``cost_bps``;
    IGNORE (-100) where the return is NaN."""
    c = cost_bps / BPS
    out = np.full(returns.shape, HOLD, dtype=np.int64)
    out[returns > c] = BUY
    out[returns < -c] = SELL
    out[~np.isfinite(returns)] = IGNORE
    return out


def label_matrix(samples: SampleSet, config: MarketConfig) -> np.ndarray:
    """int64 (N, n_horizons) labels at each of ``config.horizons_min``."""
    return np.stack([net_labels(samples.returns[h], config.cost_bps) for h in config.horizons_min], axis=1)


def net_rewards(samples: SampleSet, config: MarketConfig) -> np.ndarray:
    """float32 (N, 2) realized net bps of [BUY, SELL] held ``trade_horizon_min``; NaN if unknown."""
    r = samples.returns[config.trade_horizon_min] * BPS
    return np.stack([r - config.cost_bps, -r - config.cost_bps], axis=1).astype(np.float32)


def class_balance(labels: np.ndarray) -> dict[str, int]:
    """Counts per class of labels (IGNORE left out)."""
    counts = np.bincount(labels[labels >= 0], minlength=len(ACTIONS))
    return {a: int(n) for a, n in zip(ACTIONS, counts, strict=True)}


def scaling_stats(samples: SampleSet, groups: list[str], max_rows: int = 20000
                  ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per group and channel mean and std over the present rows of ``samples`` (a seeded subsample
    of at most ``max_rows`` samples); a group never present keeps (0, 1)."""
    rng = np.random.default_rng(0)
    idx = np.arange(len(samples)) if len(samples) <= max_rows else np.sort(rng.choice(len(samples), max_rows, replace=False))
    x, m = samples.batch(idx, tuple(groups))
    out = {}
    for g in groups:
        rows = x[g][m[g]]
        if not len(rows):
            continue
        flat = rows.reshape(-1, rows.shape[-1]).double()
        out[g] = (flat.mean(dim=0).float(), flat.std(dim=0).float())
    return out


@dataclass
class FitResult:
    """A trained model (eval mode) and its training record."""

    model: MarketModel
    best_epoch: int
    val_loss: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    label_balance: dict[str, dict[str, int]] = field(default_factory=dict)


def _loss(model: MarketModel, out: dict[str, torch.Tensor], labels: torch.Tensor, rewards: torch.Tensor,
          trade_only: bool = False) -> torch.Tensor:
    if model.config.family == "dqn":
        ok = torch.isfinite(rewards)
        if not ok.any():
            return out["q"].sum() * 0.0
        return F.huber_loss(out["q"][ok] / 100.0, rewards[ok] / 100.0)
    logits = out["logits"]  # (B, H, 3)
    if trade_only:
        k = model.config.trade_index
        return F.cross_entropy(logits[:, k], labels[:, k], ignore_index=IGNORE)
    return F.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1), ignore_index=IGNORE)


@torch.no_grad()
def _validation_loss(model: MarketModel, samples: SampleSet, labels: np.ndarray, rewards: np.ndarray,
                     batch_size: int) -> float:
    model.eval()
    total, count = 0.0, 0
    for lo in range(0, len(samples), batch_size):
        idx = np.arange(lo, min(lo + batch_size, len(samples)))
        x, m = samples.batch(idx, tuple(model.names))
        loss = _loss(model, model(x, m), torch.from_numpy(labels[idx]), torch.from_numpy(rewards[idx]),
                     trade_only=True)
        total += float(loss) * len(idx)
        count += len(idx)
    return total / max(count, 1)


def fit(train: SampleSet, val: SampleSet, config: MarketConfig, *, epochs: int = 6, batch_size: int = 256,
        lr: float = 2e-3, weight_decay: float = 1e-2, patience: int = 2, seed: int = 0, num_threads: int = 1,
        max_train: int | None = None, progress: Progress | None = None) -> FitResult:
    """Train ``config.family`` on ``train`` with early stopping on ``val`` (module docstring).

    Args:
        train, val: SampleSets in time order (val after train, purged by the caller).
        max_train: train on a seeded random subset of at most this many samples per epoch.
        progress: called with (fraction in [0, 1], message) after each epoch.

    Returns:
        FitResult with the best epoch's weights (eval mode).

    Raises:
        ValueError: epochs < 1 or an empty split.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not len(train) or not len(val):
        raise ValueError(f"empty split: {len(train)} train / {len(val)} validation samples")
    started = time.perf_counter()
    with deterministic_training(seed=seed, num_threads=num_threads):
        model = MarketModel(config)
        model.fit_scaling(scaling_stats(train, model.names))
        y_train, y_val = label_matrix(train, config), label_matrix(val, config)
        r_train, r_val = net_rewards(train, config), net_rewards(val, config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        rng = np.random.default_rng(seed)
        best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
        history = []
        for epoch in range(1, epochs + 1):
            model.train()
            order = rng.permutation(len(train))
            if max_train is not None:
                order = order[:max_train]
            loss_sum, seen = 0.0, 0
            for lo in range(0, len(order), batch_size):
                idx = order[lo:lo + batch_size]
                x, m = train.batch(idx, tuple(model.names))
                loss = _loss(model, model(x, m), torch.from_numpy(y_train[idx]), torch.from_numpy(r_train[idx]))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                loss_sum += loss.item() * len(idx)
                seen += len(idx)
            val_loss = _validation_loss(model, val, y_val, r_val, 2048)
            history.append({"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "val_loss": val_loss})
            if val_loss < best[0]:
                best = (val_loss, epoch, copy.deepcopy(model.state_dict()))
            if progress is not None:
                progress(epoch / epochs, f"{config.family} epoch {epoch}/{epochs} val_loss={val_loss:.4f}")
            if epoch - best[1] >= patience:
                break
        model.load_state_dict(best[2])
        model.eval()
    return FitResult(model=model, best_epoch=best[1], val_loss=best[0], history=history,
                     seconds=time.perf_counter() - started,
                     label_balance={"train": class_balance(y_train[:, config.trade_index]),
                                    "validation": class_balance(y_val[:, config.trade_index])})


@torch.no_grad()
def predict_raw(model: MarketModel, samples: SampleSet, *, batch_size: int = 2048,
                permute: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Raw outputs over ``samples``: {"hidden": (N, H), "logits": (N, n_h, 3)} or {"hidden", "q": (N, 2)}."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for lo in range(0, len(samples), batch_size):
        idx = np.arange(lo, min(lo + batch_size, len(samples)))
        x, m = samples.batch(idx, tuple(model.names), permute=permute)
        for k, v in model(x, m).items():
            parts.setdefault(k, []).append(v.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def trade_logits(model: MarketModel, raw: dict[str, np.ndarray]) -> np.ndarray:
    """(N, 3) trade-horizon logits of raw outputs: the head's, or the DQN's Q-values as logits."""
    from ml.evaluation.calibration import dqn_logits

    return dqn_logits(raw["q"]) if "q" in raw else raw["logits"][:, model.config.trade_index]


def calibrate(model: MarketModel, train: SampleSet, val: SampleSet):
    """Fit the model's Calibration (``ml.evaluation.calibration``) on ``val``: the prior and the
    class net returns from ``train``'s trade-horizon labels, temperature and shrinkage on ``val``.

    Raises ValueError when ``val`` has no labelled sample."""
    from ml.evaluation.calibration import class_net_returns, fit_calibration
    from ml.evaluation.stats import prior_probs

    config = model.config
    y_train = label_matrix(train, config)[:, config.trade_index]
    y_val = label_matrix(val, config)[:, config.trade_index]
    raw = predict_raw(model, val)
    return fit_calibration(trade_logits(model, raw), y_val, prior=prior_probs(y_train[y_train >= 0]),
                           class_net_bps=class_net_returns(train.returns[config.trade_horizon_min], y_train,
                                                           config.cost_bps),
                           cost_bps=config.cost_bps, val_q=raw.get("q"),
                           val_rewards=net_rewards(val, config) if config.family == "dqn" else None)
