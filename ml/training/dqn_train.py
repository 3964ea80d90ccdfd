"""Train the DQN agent on candle history (explicit loop, CPU), offline, as paper trading.

Decision process: one step every ``horizon_min`` minutes at the close of a 1m candle ``t`` (the
same samples and inputs as the CNN, ml/training/dataset.py). The agent takes BUY, SELL or HOLD
on a notional of 1, holds it for ``horizon_min`` minutes and closes it. The reward is the paper
PnL after fees, in bps of the notional:

    BUY:  1e4 * (r - 2 * fee)     SELL: 1e4 * (-r - 2 * fee)     HOLD: 0
    r = close[t + h] / close[t] - 1 (1m closes), fee = taker fee per side (0.1%)

The next state is the sample at ``t + h`` (``done`` when it is missing or outside the split).

Loop: the agent walks the training period in time order, ``act_batch`` samples at a time,
choosing epsilon-greedy actions from the online network (epsilon decays linearly to
``eps_end``); the transitions go to a replay buffer prioritized by profitability
(ml/training/replay_buffer.py), and ``updates_per_batch`` minibatches are drawn from it after each
chunk. Target: Double DQN, ``y = reward + gamma * (1 - done) * Q_target(s', argmax_a Q_online(s', a))``,
importance-weighted Huber loss; the target network is a copy refreshed every ``target_sync`` updates.

Validation metric: mean paper PnL per decision (bps, after fees) of the greedy policy on the last
``val_fraction`` of samples (HOLD-only scores 0). Split and embargo as in the CNN training.
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ml.features.base_input import WINDOW
from ml.features.rings import TIMEFRAME_MS
from ml.models.dqn import BPS, DqnConfig, QNetwork, huber_td_loss, summarize
from ml.models.output import ACTIONS
from ml.training.cnn_train import DEFAULT_TRAIN_END_MS, Progress, _report, _split, default_num_threads
from ml.training.dataset import HISTORY_COMPONENTS, MINUTE_MS, CandleDataset, make_dataset
from ml.training.determinism import deterministic_training
from ml.training.replay_buffer import ProfitPrioritizedReplay

logger = logging.getLogger(__name__)

BUY, SELL, HOLD = (ACTIONS.index(a) for a in ("BUY", "SELL", "HOLD"))
DEFAULT_TRAIN_DAYS = 14  # of 1m history before train_end_ms


@dataclass
class DqnTrainResult:
    """Trained Q-network (eval mode), metrics, and (start_ms, end_ms) of the candles read."""

    model: QNetwork
    metrics: dict[str, Any]
    data_range: tuple[int, int]


def paper_rewards(returns: np.ndarray, fee: float) -> np.ndarray:
    """Rewards (N, 3) in bps, ACTIONS order, for horizon returns (N,) (module docstring)."""
    rewards = np.zeros((len(returns), len(ACTIONS)), dtype=np.float32)
    rewards[:, BUY] = BPS * (returns - 2.0 * fee)
    rewards[:, SELL] = BPS * (-returns - 2.0 * fee)
    return rewards


def next_states(times: np.ndarray, horizon_min: int) -> np.ndarray:
    """Index (N,) of the sample at ``t + horizon`` for each sample time, -1 where there is none."""
    target = times + horizon_min * MINUTE_MS
    j = np.searchsorted(times, target)
    found = (j < len(times)) & (times[np.minimum(j, len(times) - 1)] == target)
    return np.where(found, j, -1)


class _Summaries:
    """Weight-free window summaries, computed once per distinct window; gathered per sample."""

    def __init__(self, config: DqnConfig, data: CandleDataset, chunk: int = 4096) -> None:
        self.index = data.index
        with torch.no_grad():
            self.rows = {  # component -> (U, (P+R)*C)
                n: torch.cat([summarize(torch.from_numpy(w[lo:lo + chunk]), config.pooled_length, config.recent_rows)
                              for lo in range(0, len(w), chunk)])
                for n, w in data.windows.items() if n in config.components}

    def __call__(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """Summaries of samples ``idx`` (B,): component -> (B, (P+R)*C)."""
        return {n: rows[torch.from_numpy(self.index[n][idx])] for n, rows in self.rows.items()}


def train_dqn(history: dict[str, pd.DataFrame], config: DqnConfig | None = None, *,
              train_end_ms: int = DEFAULT_TRAIN_END_MS, train_start_ms: int | None = None,
              val_fraction: float = 0.15, episodes: int = 2, act_batch: int = 512,
              updates_per_batch: int = 8, batch_size: int = 256, lr: float = 1e-3,
              eps_start: float = 1.0, eps_end: float = 0.05, target_sync: int = 50,
              buffer_size: int = 50_000, seed: int = 0, num_threads: int | None = None,
              progress: Progress | None = None) -> DqnTrainResult:
    """Train a QNetwork on 1m samples in [start, end) (module docstring).

    Args:
        history: timeframe -> candle frame (ml.training.cnn_train.default_training_history()).
        train_end_ms: no candle at or after this time (ms, UTC) is read.
        train_start_ms: first sample time (default: ``DEFAULT_TRAIN_DAYS`` days before the end).
        episodes: passes of the agent over the training period.

    Returns:
        DqnTrainResult; metrics: n_samples, n_train, n_val, n_embargo, episodes, updates,
        val_mean_reward_bps (the validation metric), val_action_distribution,
        val_hold_reward_bps (0), val_oracle_reward_bps (best action each step), train_loss,
        train_seconds, horizon_min, fee, gamma, seed, history (per episode).

    Raises:
        ValueError: episodes < 1, too few samples, or a component without history.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    config = config or DqnConfig()
    started = time.perf_counter()
    # Seeded, but with torch's default kernels (the DQN trainer never required deterministic ones).
    with deterministic_training(seed=seed, num_threads=num_threads or default_num_threads(), deterministic=False):
        rng = np.random.default_rng(seed)
        start = train_start_ms if train_start_ms is not None else train_end_ms - DEFAULT_TRAIN_DAYS * 86_400_000
        data = make_dataset(history, start_ms=start, end_ms=train_end_ms, horizon_min=config.horizon_min,
                            components=config.components)
        train_idx, val_idx = _split(len(data), val_fraction, embargo=config.horizon_min)
        rewards = paper_rewards(data.returns, config.fee)  # (N, 3) bps
        nxt = next_states(data.times, config.horizon_min)
        nxt[(nxt > train_idx[-1])] = -1  # a training transition never leads into the embargo/validation
        summaries = _Summaries(config, data)
        online = QNetwork(config)
        target = copy.deepcopy(online).eval()
        optimizer = torch.optim.AdamW(online.parameters(), lr=lr, weight_decay=1e-4)
        buffer = ProfitPrioritizedReplay(buffer_size)
        _report(progress, 0.0, f"{len(train_idx)} train / {len(val_idx)} val samples")

        updates, history_rows, losses = 0, [], []
        chunks = [train_idx[lo:lo + act_batch] for lo in range(0, len(train_idx), act_batch)]
        total_chunks = episodes * len(chunks)
        for episode in range(episodes):
            for k, idx in enumerate(chunks):
                done_frac = (episode * len(chunks) + k) / max(total_chunks - 1, 1)
                epsilon = eps_start + (eps_end - eps_start) * done_frac
                action = _act(online, summaries(idx), epsilon, rng)
                buffer.add(idx, action, rewards[idx, action], np.maximum(nxt[idx], 0), nxt[idx] < 0)
                for _ in range(updates_per_batch):
                    losses.append(_update(online, target, optimizer, buffer, summaries, config, batch_size,
                                          rng, beta=0.4 + 0.6 * done_frac))
                    updates += 1
                    if updates % target_sync == 0:
                        target.load_state_dict(online.state_dict())
            val_reward, val_actions = _evaluate(online, summaries, rewards, val_idx)
            row = {"episode": episode + 1, "train_loss": float(np.mean(losses[-len(chunks) * updates_per_batch:])),
                   "val_mean_reward_bps": val_reward}
            history_rows.append(row)
            logger.info("dqn episode %d/%d %s", episode + 1, episodes, row)
            _report(progress, (episode + 1) / episodes, f"episode {episode + 1}/{episodes} "
                    f"loss={row['train_loss']:.3f} val_reward={val_reward:.3f} bps")

    online.eval()
    counts = np.bincount(val_actions, minlength=len(ACTIONS))
    metrics = {
        "n_samples": len(data), "n_train": len(train_idx), "n_val": len(val_idx),
        "n_embargo": len(data) - len(train_idx) - len(val_idx), "episodes": episodes, "updates": updates,
        "val_mean_reward_bps": val_reward,
        "val_action_distribution": {a: int(n) for a, n in zip(ACTIONS, counts, strict=True)},
        "val_hold_reward_bps": 0.0,
        "val_oracle_reward_bps": float(rewards[val_idx].max(axis=1).mean()),
        "train_loss": history_rows[-1]["train_loss"], "train_seconds": time.perf_counter() - started,
        "horizon_min": config.horizon_min, "fee": config.fee, "gamma": config.gamma, "seed": seed,
        "train_period_ms": [int(data.times[train_idx[0]]), int(data.times[train_idx[-1]])],
        "val_period_ms": [int(data.times[val_idx[0]]), int(data.times[val_idx[-1]])],
        "history": history_rows,
    }
    oldest = min(int(data.last_open[n][0]) - (WINDOW - 1) * TIMEFRAME_MS[HISTORY_COMPONENTS[n]]
                 for n in config.components)
    return DqnTrainResult(model=online, metrics=metrics, data_range=(oldest, train_end_ms))


@torch.no_grad()
def _act(model: QNetwork, s: dict[str, torch.Tensor], epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Epsilon-greedy actions (B,) from the online network."""
    model.eval()
    greedy = model.q_from_summary(s)[0].argmax(dim=1).numpy()
    explore = rng.random(len(greedy)) < epsilon
    return np.where(explore, rng.integers(0, len(ACTIONS), len(greedy)), greedy)


def _update(online: QNetwork, target: QNetwork, optimizer: torch.optim.Optimizer,
            buffer: ProfitPrioritizedReplay, summaries: _Summaries, config: DqnConfig,
            batch_size: int, rng: np.random.Generator, beta: float) -> float:
    """One Double-DQN gradient step on a prioritized minibatch; returns the loss."""
    b = buffer.sample(batch_size, rng, beta=beta)
    with torch.no_grad():
        s_next = summaries(b.next_state)
        online.eval()
        best = online.q_from_summary(s_next)[0].argmax(dim=1, keepdim=True)  # (B, 1)
        q_next = target.q_from_summary(s_next)[0].gather(1, best)[:, 0]  # (B,)
        y = torch.from_numpy(b.reward) + config.gamma * torch.from_numpy(~b.done).float() * q_next
    online.train()
    q = online.q_from_summary(summaries(b.state))[0]  # (B, 3)
    q_taken = q.gather(1, torch.from_numpy(b.action)[:, None])[:, 0]
    loss = huber_td_loss(q_taken, y, torch.from_numpy(b.weight))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(online.parameters(), 10.0)
    optimizer.step()
    return float(loss.item())


@torch.no_grad()
def _evaluate(model: QNetwork, summaries: _Summaries, rewards: np.ndarray,
              idx: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean reward (bps) per decision of the greedy policy over samples idx, and its actions."""
    model.eval()
    actions = model.q_from_summary(summaries(idx))[0].argmax(dim=1).numpy()
    return float(rewards[idx, actions].mean()), actions
