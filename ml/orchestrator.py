"""Decision rule of the walking skeleton: act on one model's output when it is confident enough.

BUY when the model's action is BUY and its confidence (the BUY probability) reaches
``buy_threshold``; SELL likewise with ``sell_threshold``; otherwise HOLD. After an order, further
BUY/SELL decisions are held for ``cooldown_ms`` so one signal does not fire an order every second.
The mixture of experts over several models replaces this rule later; the interface stays.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DecisionResult:
    action: str  # BUY | SELL | HOLD
    confidence: float  # probability of the model's chosen action, in [0, 1]
    threshold: float  # the threshold the action was compared with
    reason: str


def decide(
    *,
    model_action: str,
    confidence: float,
    buy_threshold: float,
    sell_threshold: float,
    now_ms: int,
    last_order_ms: int | None,
    cooldown_ms: int,
) -> DecisionResult:
    """Turn a model action and confidence into BUY / SELL / HOLD (see module docstring)."""
    if model_action not in ("BUY", "SELL"):
        return DecisionResult("HOLD", confidence, max(buy_threshold, sell_threshold), "model says HOLD")
    threshold = buy_threshold if model_action == "BUY" else sell_threshold
    if confidence < threshold:
        return DecisionResult("HOLD", confidence, threshold, f"{model_action} confidence {confidence:.3f} < {threshold:.3f}")
    if last_order_ms is not None and now_ms - last_order_ms < cooldown_ms:
        wait = (cooldown_ms - (now_ms - last_order_ms)) / 1000
        return DecisionResult("HOLD", confidence, threshold, f"cooldown: {wait:.0f} s left")
    return DecisionResult(model_action, confidence, threshold, f"{model_action} confidence {confidence:.3f} >= {threshold:.3f}")
