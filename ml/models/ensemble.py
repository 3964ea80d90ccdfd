"""The orchestrator's input for now: the mean of the models' action probabilities.

Every model that produced an output this second counts once (the CNN, the DQN and the
transformer when all are enabled and their inputs complete). Each predicted-return horizon is
the mean over the models that give it. The mixture of experts (learned weights, confidence
thresholds per model) replaces this rule later; the interface (one ModelOutput) stays.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from ml.models.output import ACTIONS, ModelOutput

logger = logging.getLogger(__name__)

ENSEMBLE_NAME = "ensemble"


def mean_output(outputs: Mapping[str, ModelOutput]) -> ModelOutput:
    """Combine outputs (model name -> ModelOutput) into one "ensemble" ModelOutput.

    Returns:
        probs: mean of the probability vectors (renormalized); predicted_returns: per-horizon mean;
        metadata: models (names, in order) and each model's probs.

    Raises:
        ValueError: ``outputs`` is empty.
    """
    if not outputs:
        raise ValueError("no model output to combine")
    probs = np.mean([[o.probs[a] for a in ACTIONS] for o in outputs.values()], axis=0)  # (3,)
    horizons: dict[str, list[float]] = {}
    for o in outputs.values():
        for h, r in o.predicted_returns.items():
            horizons.setdefault(h, []).append(r)
    return ModelOutput.from_probs(
        model_name=ENSEMBLE_NAME, model_version="+".join(f"{n}:{o.model_version}" for n, o in outputs.items()),
        probs=probs / probs.sum(), predicted_returns={h: float(np.mean(v)) for h, v in horizons.items()},
        metadata={"models": list(outputs), "probs": {n: dict(o.probs) for n, o in outputs.items()}},
    )
