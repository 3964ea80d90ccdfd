"""The model table, the device choice and the orchestrator's mean of model outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.models.device import select_device
from ml.models.ensemble import mean_output
from ml.models.output import ModelOutput
from ml.models.specs import MODEL_NAMES, parameter_count, spec_for


def out(name: str, probs: list[float], returns: dict[str, float] | None = None) -> ModelOutput:
    return ModelOutput.from_probs(model_name=name, model_version="v1", probs=np.array(probs),
                                  predicted_returns=returns)


def test_the_three_families_are_known_and_an_unknown_name_is_a_clear_error() -> None:
    assert MODEL_NAMES == ("cnn", "transformer", "dqn")  # the cascade order
    with pytest.raises(KeyError, match="unknown model 'lstm'"):
        spec_for("lstm")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_family_is_small_enough_for_real_time_cpu_inference(name: str) -> None:
    spec = spec_for(name)
    assert 1_000 < parameter_count(spec.module_class(spec.config_class(family=name))) < 100_000


def test_the_device_is_cuda_only_when_available(monkeypatch) -> None:
    monkeypatch.delenv("GOGO_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device().type == expected
    assert select_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("GOGO_DEVICE", "cpu")
    assert select_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            select_device("cuda")


def test_the_ensemble_is_the_mean_of_the_models_probabilities_and_returns() -> None:
    combined = mean_output({"cnn": out("cnn", [0.6, 0.1, 0.3]), "dqn": out("dqn", [0.2, 0.3, 0.5], {"5m": 0.002}),
                            "transformer": out("transformer", [0.1, 0.2, 0.7], {"5m": 0.0, "1m": -0.001})})
    assert combined.probs == pytest.approx({"BUY": 0.3, "SELL": 0.2, "HOLD": 0.5})
    assert combined.action == "HOLD" and combined.model_name == "ensemble"
    assert combined.predicted_returns == pytest.approx({"5m": 0.001, "1m": -0.001})
    assert combined.metadata["models"] == ["cnn", "dqn", "transformer"]
    with pytest.raises(ValueError, match="no model output"):
        mean_output({})
