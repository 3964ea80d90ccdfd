"""ModelOutput invariants."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ml.models.output import ModelOutput


def test_from_probs_picks_the_argmax_and_its_probability() -> None:
    out = ModelOutput.from_probs(model_name="cnn", model_version="v1",
                                 probs=np.array([0.2, 0.5, 0.3]), hidden=np.arange(4.0))
    assert out.action == "SELL" and out.confidence == pytest.approx(0.5)
    assert out.probs == pytest.approx({"BUY": 0.2, "SELL": 0.5, "HOLD": 0.3})
    assert out.hidden.dtype == np.float32 and out.hidden.shape == (4,)
    assert json.loads(json.dumps(out.to_dict()))["hidden"] == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("probs, action, confidence, message", [
    ({"BUY": 0.5, "SELL": 0.5}, "BUY", 0.5, "keys"),
    ({"BUY": 0.5, "SELL": 0.4, "HOLD": 0.3}, "BUY", 0.5, "sum"),
    ({"BUY": 0.2, "SELL": 0.5, "HOLD": 0.3}, "BUY", 0.2, "argmax"),
    ({"BUY": 0.2, "SELL": 0.5, "HOLD": 0.3}, "SELL", 0.4, "confidence"),
])
def test_it_rejects_inconsistent_outputs(probs: dict, action: str, confidence: float,
                                         message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelOutput(model_name="cnn", model_version="v1", probs=probs, action=action,
                    confidence=confidence)
