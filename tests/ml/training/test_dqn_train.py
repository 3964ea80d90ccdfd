"""A tiny real DQN run on the recorded history: rewards, next states, metrics, seeding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.models.dqn import DqnConfig
from ml.training.dqn_train import next_states, paper_rewards, train_dqn

M = 60_000
START = 1_722_988_800_000  # 2024-08-07 00:00 UTC
END = START + 600 * M
SMALL = DqnConfig(encoder_size=8, hidden_size=16)
FAST = {"train_start_ms": START, "train_end_ms": END, "episodes": 1, "act_batch": 128, "updates_per_batch": 4,
        "batch_size": 64}


def test_rewards_are_paper_pnl_after_fees_in_bps() -> None:
    rewards = paper_rewards(np.array([0.003, -0.001]), fee=0.001)
    np.testing.assert_allclose(rewards, [[10.0, -50.0, 0.0], [-30.0, -10.0, 0.0]], atol=1e-4)


def test_the_next_state_is_the_sample_one_horizon_later() -> None:
    times = np.array([0, 1, 2, 5, 7]) * M
    np.testing.assert_array_equal(next_states(times, horizon_min=5), [3, -1, 4, -1, -1])


def test_a_tiny_training_run_reports_its_metrics(eth_history: dict) -> None:
    result = train_dqn(eth_history, SMALL, seed=1, **FAST)
    m = result.metrics
    assert m["n_samples"] == 595 and m["n_train"] + m["n_val"] + m["n_embargo"] == 595
    assert m["train_period_ms"][1] < m["val_period_ms"][0]
    assert m["updates"] == 4 * -(-m["n_train"] // 128)
    assert sum(m["val_action_distribution"].values()) == m["n_val"]
    assert m["val_oracle_reward_bps"] >= m["val_mean_reward_bps"] and np.isfinite(m["train_loss"])
    assert result.data_range[1] == END and not result.model.training


def test_dqn_training_is_seeded(eth_history: dict) -> None:
    runs = [train_dqn(eth_history, SMALL, seed=3, **FAST) for _ in range(2)]
    assert runs[0].metrics["train_loss"] == pytest.approx(runs[1].metrics["train_loss"], rel=1e-6)
    for key, value in runs[0].model.state_dict().items():
        torch.testing.assert_close(runs[1].model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
