"""ModelOutput: what every model returns for one BaseDataInput."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

ACTIONS = ("BUY", "SELL", "HOLD")  # index order of every model's class logits
_PROB_TOLERANCE = 1e-4


@dataclass(frozen=True, eq=False)
class ModelOutput:
    """One model's prediction at one instant.

    Attributes:
        model_name: e.g. "cnn".
        model_version: the config version string of the checkpoint that produced it.
        probs: {"BUY", "SELL", "HOLD"} -> probability, summing to 1 (tolerance 1e-4).
        action: the argmax of ``probs`` (ties: first in ACTIONS order).
        confidence: ``probs[action]``, the max probability.
        predicted_returns: horizon (e.g. "5m") -> expected fractional return; may be empty.
        hidden: float32 (H,) hidden state for downstream models (the mixture of experts).
        metadata: free-form, JSON-serializable details (ts, latency, completeness, ...).

    Raises:
        ValueError: on construction, when the probabilities or action are inconsistent.
    """

    model_name: str
    model_version: str
    probs: dict[str, float]
    action: str
    confidence: float
    predicted_returns: dict[str, float] = field(default_factory=dict)
    hidden: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.probs) != set(ACTIONS):
            raise ValueError(f"probs keys {sorted(self.probs)} != {sorted(ACTIONS)}")
        total = sum(self.probs.values())
        if not math.isclose(total, 1.0, abs_tol=_PROB_TOLERANCE):
            raise ValueError(f"probs sum to {total}, expected 1")
        best = max(ACTIONS, key=lambda a: self.probs[a])
        if self.action != best:
            raise ValueError(f"action {self.action!r} is not the argmax of probs ({best!r})")
        if not math.isclose(self.confidence, self.probs[best], abs_tol=1e-6):
            raise ValueError(f"confidence {self.confidence} != max prob {self.probs[best]}")

    @classmethod
    def from_probs(cls, *, model_name: str, model_version: str, probs: np.ndarray,
                   hidden: np.ndarray | None = None,
                   predicted_returns: dict[str, float] | None = None,
                   metadata: dict[str, Any] | None = None) -> ModelOutput:
        """Build from a probability vector (3,) in ACTIONS order; action = argmax."""
        p = np.asarray(probs, dtype=np.float64).reshape(-1)
        if p.shape != (len(ACTIONS),):
            raise ValueError(f"probs shape {p.shape}, expected ({len(ACTIONS)},)")
        probs_dict = {a: float(v) for a, v in zip(ACTIONS, p, strict=False)}
        best = int(np.argmax(p))
        return cls(
            model_name=model_name,
            model_version=model_version,
            probs=probs_dict,
            action=ACTIONS[best],
            confidence=float(p[best]),
            predicted_returns=dict(predicted_returns or {}),
            hidden=np.zeros(0, dtype=np.float32) if hidden is None
            else np.asarray(hidden, dtype=np.float32).reshape(-1),
            metadata=dict(metadata or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form (``hidden`` as a list of floats)."""
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "probs": dict(self.probs),
            "action": self.action,
            "confidence": self.confidence,
            "predicted_returns": dict(self.predicted_returns),
            "hidden": [float(x) for x in self.hidden],
            "metadata": dict(self.metadata),
        }
