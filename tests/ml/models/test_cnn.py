"""MultiTimeframeCNN forward pass and predict() on a real BaseDataInput."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from ml.features.base_input import COMPONENT_SHAPES, IncompleteInputError
from ml.models.cnn import CnnConfig, MultiTimeframeCNN, predict


def random_batch(config: CnnConfig, batch: int = 4) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {n: torch.randn(batch, *COMPONENT_SHAPES[n], generator=gen) for n in config.components}


def test_forward_gives_logits_and_hidden_per_sample() -> None:
    torch.manual_seed(0)
    config = CnnConfig()
    model = MultiTimeframeCNN(config).eval()
    logits, hidden = model(random_batch(config))
    assert logits.shape == (4, 3) and hidden.shape == (4, config.hidden_size)
    probs = torch.softmax(logits, dim=-1)
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(4))
    assert not torch.allclose(logits[0], logits[1])  # the inputs matter


def test_optional_1s_and_cob_branches_run() -> None:
    config = CnnConfig(components=("primary_1s", "reference_1s", "cob"))
    model = MultiTimeframeCNN(config).eval()
    logits, _ = model(random_batch(config, batch=2))
    assert logits.shape == (2, 3)
    assert model.encoders["cob"].input_norm.num_features == 87


def test_config_validates_and_round_trips() -> None:
    config = CnnConfig(channels=(8, 8, 8), kernel_sizes=(3, 3, 3))
    assert CnnConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="primary_5m"):
        CnnConfig(components=("primary_5m",))
    with pytest.raises(ValueError, match="same length"):
        CnnConfig(channels=(8,), kernel_sizes=(3, 3))
    with pytest.raises(ValueError, match="unknown CnnConfig fields"):
        CnnConfig.from_dict({"colour": "red"})


def test_predict_on_recorded_history_is_a_consistent_model_output(live_input) -> None:
    torch.manual_seed(0)
    model = MultiTimeframeCNN(CnnConfig())
    out = predict(model, live_input)
    assert not model.training
    assert sum(out.probs.values()) == pytest.approx(1.0, abs=1e-6)
    assert out.action == max(out.probs, key=out.probs.get)
    assert out.confidence == pytest.approx(max(out.probs.values()))
    assert out.hidden.shape == (64,) and out.model_version == "cnn-mtf-1"
    assert out.metadata["ts"] == live_input.ts
    assert out.metadata["completeness"] == {"primary_1m": 1.0, "primary_1h": 1.0, "primary_1d": 1.0}
    again = predict(model, live_input)
    assert again.probs == out.probs  # deterministic in eval mode
    np.testing.assert_array_equal(again.hidden, out.hidden)


def test_predict_is_fast_enough_for_every_second(live_input) -> None:
    model = MultiTimeframeCNN(CnnConfig())
    predict(model, live_input)  # warm-up
    start = time.perf_counter()
    for _ in range(20):
        predict(model, live_input)
    per_call_ms = (time.perf_counter() - start) * 1000 / 20
    print(f"predict: {per_call_ms:.2f} ms per call")
    assert per_call_ms < 250  # generous: shared 2-core CI machine; typically a few ms


def test_predict_refuses_incomplete_input(live_input) -> None:
    model = MultiTimeframeCNN(CnnConfig(components=("primary_1m", "primary_1s")))
    with pytest.raises(IncompleteInputError, match="primary_1s"):
        predict(model, live_input)
