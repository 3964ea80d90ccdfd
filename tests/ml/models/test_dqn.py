"""Dueling Q-network: shapes, the dueling identity, the policy and the outputs it reports."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ml.features.base_input import COMPONENT_SHAPES, IncompleteInputError
from ml.models.dqn import DqnConfig, QNetwork, predict, q_to_probs, summarize


def random_batch(config: DqnConfig, batch: int = 4) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {n: torch.randn(batch, *COMPONENT_SHAPES[n], generator=gen) for n in config.components}


def test_forward_gives_q_values_whose_advantages_average_to_the_value() -> None:
    torch.manual_seed(0)
    model = QNetwork(DqnConfig()).eval()
    q, value, hidden = model(random_batch(model.config))
    assert q.shape == (4, 3) and value.shape == (4,) and hidden.shape == (4, 64)
    torch.testing.assert_close(q.mean(dim=1), value, rtol=0, atol=1e-6)  # Q = V + A - mean(A)
    assert not torch.allclose(q[0], q[1])


def test_summarize_keeps_chunk_means_and_the_newest_rows() -> None:
    x = torch.arange(300 * 2, dtype=torch.float32).reshape(1, 300, 2)
    s = summarize(x, pooled_length=10, recent_rows=3).reshape(13, 2)
    torch.testing.assert_close(s[0], x[0, :30].mean(dim=0))
    torch.testing.assert_close(s[9], x[0, 270:].mean(dim=0))
    torch.testing.assert_close(s[10:], x[0, -3:])


def test_the_policy_is_a_softmax_of_q_over_the_temperature() -> None:
    probs = q_to_probs(torch.tensor([10.0, 0.0, 5.0]), temperature_bps=5.0)
    e = np.exp([2.0, 0.0, 1.0])
    np.testing.assert_allclose(probs.numpy(), e / e.sum(), rtol=1e-6)


def test_predict_reports_q_values_value_and_the_implied_return(live_input) -> None:
    torch.manual_seed(0)
    model = QNetwork(DqnConfig())
    out = predict(model, live_input)
    q = out.metadata["q_values"]
    assert out.model_name == "dqn" and out.model_version == "dqn-duel-1"
    assert out.predicted_returns["5m"] == pytest.approx((q["BUY"] - q["SELL"]) / 2 / 1e4, abs=1e-12)
    assert out.metadata["value"] == pytest.approx(np.mean(list(q.values())), abs=1e-4)
    denom = sum(math.exp(v / 5.0) for v in q.values())
    assert out.probs["BUY"] == pytest.approx(math.exp(q["BUY"] / 5.0) / denom, abs=1e-6)
    assert out.hidden.shape == (64,)
    again = predict(model, live_input)
    assert again.probs == out.probs


def test_seeded_weights_give_the_same_q_values() -> None:
    x = {n: torch.full((1, *COMPONENT_SHAPES[n]), 0.01) for n in DqnConfig().components}
    qs = []
    for _ in range(2):
        torch.manual_seed(123)
        qs.append(QNetwork(DqnConfig()).eval()(x)[0])
    torch.testing.assert_close(qs[0], qs[1], rtol=0, atol=0)


def test_config_validates_and_round_trips() -> None:
    config = DqnConfig(pooled_length=6, recent_rows=4)
    assert DqnConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="pooled_length"):
        DqnConfig(pooled_length=7)
    with pytest.raises(ValueError, match="unknown DqnConfig fields"):
        DqnConfig.from_dict({"depth": 3})


def test_predict_refuses_incomplete_input(live_input) -> None:
    with pytest.raises(IncompleteInputError, match="primary_1s"):
        predict(QNetwork(DqnConfig(components=("primary_1m", "primary_1s"))), live_input)
