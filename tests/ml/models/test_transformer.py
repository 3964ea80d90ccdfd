"""Frame-sequence transformer: shapes, tail normalization, outputs, completeness of its tail."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.features.base_input import COMPONENT_SHAPES, BaseDataInput, IncompleteInputError
from ml.features.normalize import normalize_candles
from ml.models.transformer import FrameTransformer, TransformerConfig, predict, sequence_tokens


def synthetic_input(present_rows: int = 300) -> BaseDataInput:
    rng = np.random.default_rng(0)
    comps = {n: (np.abs(rng.normal(size=s)) + 100).astype(np.float32) for n, s in COMPONENT_SHAPES.items()}
    comps["cob"] = np.abs(rng.normal(size=COMPONENT_SHAPES["cob"])).astype(np.float32) * 1000
    present = {n: np.arange(300) >= 300 - present_rows for n in comps}
    return BaseDataInput("ETHUSDT", "BTCUSDT", 1_723_161_599_000, comps, present)


def test_forward_gives_logits_returns_and_hidden() -> None:
    torch.manual_seed(0)
    config = TransformerConfig()
    model = FrameTransformer(config).eval()
    gen = torch.Generator().manual_seed(0)
    logits, returns, hidden = model(torch.randn(3, config.seq_len, config.n_features, generator=gen))
    assert logits.shape == (3, 3) and returns.shape == (3, 1) and hidden.shape == (3, 32)
    assert config.n_features == 97
    assert not torch.allclose(logits[0], logits[1])


def test_tokens_normalize_only_the_tail() -> None:
    inputs = synthetic_input()
    tokens = sequence_tokens(inputs.components, 60)
    assert tokens.shape == (60, 97)
    np.testing.assert_allclose(tokens[:, :5], normalize_candles(inputs.components["primary_1s"][-60:]), rtol=1e-6)
    assert tokens[-1, 3] == 0.0  # the newest close is the price reference: log(1) = 0


def test_predict_fills_the_1m_return_and_is_deterministic() -> None:
    torch.manual_seed(0)
    model = FrameTransformer(TransformerConfig())
    inputs = synthetic_input(present_rows=60)  # only the last 60 s exist: enough for seq_len 60
    out = predict(model, inputs)
    assert out.model_name == "transformer" and set(out.predicted_returns) == {"1m"}
    assert out.metadata["completeness"] == {"primary_1s": 1.0, "reference_1s": 1.0, "cob": 1.0}
    assert sum(out.probs.values()) == pytest.approx(1.0, abs=1e-9)
    assert predict(model, inputs).probs == out.probs


def test_predict_refuses_a_thin_tail() -> None:
    with pytest.raises(IncompleteInputError, match="last 60 s"):
        predict(FrameTransformer(TransformerConfig()), synthetic_input(present_rows=40))


def test_config_validates_and_round_trips() -> None:
    config = TransformerConfig(seq_len=30, horizons_s=(60, 300))
    assert TransformerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="whole minutes"):
        TransformerConfig(horizons_s=(90,))
