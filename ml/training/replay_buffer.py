"""Replay buffer for the DQN, prioritized by profitability.

A transition is (state, action, reward, next state, done), states stored as sample indices into
a dataset (the windows live once in memory). Its priority is ``(|reward| + eps) ** alpha``:
reward is the paper PnL after fees in bps, so trades that made or lost money are replayed more
often than flat holds, which would otherwise dominate the buffer (HOLD pays exactly 0). Unlike
Schaul et al. 2016 ("Prioritized Experience Replay") the priority is fixed at insertion, not the
TD error; the importance-sampling weights ``(N * P(i)) ** -beta / max`` correct the bias the same way.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """Sampled transitions: index arrays (B,) into the dataset, and IS weights (B,) in (0, 1]."""

    state: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_state: np.ndarray
    done: np.ndarray
    weight: np.ndarray


class ProfitPrioritizedReplay:
    """Fixed-capacity ring of transitions; the oldest is overwritten when full."""

    def __init__(self, capacity: int, *, alpha: float = 0.6, eps: float = 1.0) -> None:
        if capacity < 1 or alpha < 0 or eps <= 0:
            raise ValueError(f"need capacity >= 1, alpha >= 0, eps > 0; got {capacity}, {alpha}, {eps}")
        self.capacity, self.alpha, self.eps = capacity, alpha, eps
        self.state = np.zeros(capacity, dtype=np.int64)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.next_state = np.zeros(capacity, dtype=np.int64)
        self.done = np.zeros(capacity, dtype=bool)
        self.priority = np.zeros(capacity, dtype=np.float64)
        self._next = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, state: np.ndarray, action: np.ndarray, reward: np.ndarray,
            next_state: np.ndarray, done: np.ndarray) -> None:
        """Append transitions (arrays of equal length n; reward in bps)."""
        n = len(state)
        slots = (self._next + np.arange(n)) % self.capacity
        self.state[slots], self.action[slots], self.next_state[slots] = state, action, next_state
        self.reward[slots], self.done[slots] = reward, done
        self.priority[slots] = (np.abs(reward) + self.eps) ** self.alpha
        self._next = int((self._next + n) % self.capacity)
        self._size = min(self.capacity, self._size + n)

    def probabilities(self) -> np.ndarray:
        """Sampling probability (size,) of each stored transition."""
        p = self.priority[: self._size]
        return p / p.sum()

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 0.4) -> Batch:
        """Draw ``batch_size`` transitions with probability proportional to priority.

        Raises:
            ValueError: the buffer is empty.
        """
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        p = self.probabilities()
        idx = rng.choice(self._size, size=batch_size, p=p)
        weight = (self._size * p[idx]) ** -beta
        weight /= (self._size * p.min()) ** -beta  # the largest possible weight -> 1
        return Batch(self.state[idx], self.action[idx], self.reward[idx], self.next_state[idx],
                     self.done[idx], weight.astype(np.float32))
