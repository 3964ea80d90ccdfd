"""Decision rule of the walking skeleton: act on one model's directional confidence.

The model gives probabilities for BUY, SELL and HOLD. Its directional side is the more probable
of BUY and SELL, and the confidence is that probability. The orchestrator acts on that side when
the confidence reaches the side's threshold (admin-editable, default 0.34: just above the 1/3 of
a model with no opinion); otherwise it holds. HOLD's probability is the rest of the mass: a model
sure of nothing keeps every directional probability low. After an order, further BUY/SELL
decisions are held for ``cooldown_ms`` so one signal does not fire an order every second.
The mixture of experts over several models replaces this rule later; the interface stays.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecisionResult:
    action: str  # BUY | SELL | HOLD
    confidence: float  # probability of the directional side considered, in [0, 1]
    threshold: float  # the threshold it was compared with
    reason: str


def decide(
    *,
    probs: Mapping[str, float],
    buy_threshold: float,
    sell_threshold: float,
    now_ms: int,
    last_order_ms: int | None,
    cooldown_ms: int,
) -> DecisionResult:
    """Turn model probabilities {"BUY", "SELL", "HOLD"} into BUY / SELL / HOLD (module docstring).

    Raises KeyError when ``probs`` lacks BUY or SELL."""
    side = "BUY" if probs["BUY"] >= probs["SELL"] else "SELL"
    confidence = float(probs[side])
    threshold = buy_threshold if side == "BUY" else sell_threshold
    if confidence < threshold:
        return DecisionResult("HOLD", confidence, threshold, f"{side} confidence {confidence:.3f} < {threshold:.3f}")
    if last_order_ms is not None and now_ms - last_order_ms < cooldown_ms:
        wait = (cooldown_ms - (now_ms - last_order_ms)) / 1000
        return DecisionResult("HOLD", confidence, threshold, f"cooldown: {wait:.0f} s left")
    return DecisionResult(side, confidence, threshold, f"{side} confidence {confidence:.3f} >= {threshold:.3f}")
