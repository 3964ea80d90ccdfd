"""Replay prioritized by profitability: priorities, sampling frequencies, IS weights, ring overwrite."""
from __future__ import annotations

import numpy as np
import pytest

from ml.training.replay_buffer import ProfitPrioritizedReplay


def fill(buffer: ProfitPrioritizedReplay, rewards: list[float]) -> None:
    n = len(rewards)
    buffer.add(np.arange(n), np.zeros(n, dtype=np.int64), np.asarray(rewards, dtype=np.float32),
               np.arange(n) + 1, np.zeros(n, dtype=bool))


def test_profitable_and_losing_trades_are_replayed_more_often_than_flat_holds() -> None:
    buffer = ProfitPrioritizedReplay(10, alpha=1.0, eps=1.0)
    fill(buffer, [0.0, 9.0, -4.0])
    np.testing.assert_allclose(buffer.probabilities(), [1 / 16, 10 / 16, 5 / 16])
    batch = buffer.sample(30_000, np.random.default_rng(0))
    freq = np.bincount(batch.state, minlength=3) / 30_000
    np.testing.assert_allclose(freq, [1 / 16, 10 / 16, 5 / 16], atol=0.01)


def test_importance_weights_undo_the_priority_and_peak_at_one() -> None:
    buffer = ProfitPrioritizedReplay(10, alpha=1.0, eps=1.0)
    fill(buffer, [0.0, 9.0])
    batch = buffer.sample(200, np.random.default_rng(1), beta=1.0)
    # beta = 1: weight proportional to 1 / P; the rarest transition gets weight 1.
    np.testing.assert_allclose(batch.weight[batch.state == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(batch.weight[batch.state == 1], 0.1, rtol=1e-6)


def test_a_full_buffer_overwrites_the_oldest_transitions() -> None:
    buffer = ProfitPrioritizedReplay(3)
    fill(buffer, [1.0, 2.0])
    fill(buffer, [3.0, 4.0])
    assert len(buffer) == 3
    np.testing.assert_array_equal(np.sort(buffer.reward), [2.0, 3.0, 4.0])


def test_an_empty_buffer_cannot_be_sampled() -> None:
    with pytest.raises(ValueError, match="empty"):
        ProfitPrioritizedReplay(3).sample(1, np.random.default_rng(0))
