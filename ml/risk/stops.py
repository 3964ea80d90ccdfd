"""Stop-loss, take-profit and trailing stop on an open position (fractions of the entry price).

For a long entered at E with the highest price since entry H: stop-loss when price <= E(1 - sl),
take-profit when price >= E(1 + tp), trailing stop when price <= H(1 - trail). A short mirrors
it with the lowest price since entry L: price >= E(1 + sl), price <= E(1 - tp), price >= L(1 + trail).
A rule set to None (or 0) is off.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StopRules:
    stop_loss: float | None = None  # fraction, e.g. 0.01 = 1 %
    take_profit: float | None = None
    trailing: float | None = None


def update_extreme(position: float, extreme: float | None, price: float) -> float | None:
    """The best price since entry: highest for a long, lowest for a short, None when flat."""
    if position == 0:
        return None
    if extreme is None:
        return price
    return max(extreme, price) if position > 0 else min(extreme, price)


def stop_hit(*, position: float, entry: float, extreme: float | None, price: float, rules: StopRules) -> str | None:
    """The rule that asks to exit ("stop_loss", "take_profit", "trailing_stop") or None.

    ``position`` signed base units, ``entry`` average entry price, ``extreme`` from
    :func:`update_extreme` (USD), ``price`` the current mark."""
    if position == 0 or entry <= 0:
        return None
    long = position > 0
    ext = extreme if extreme is not None else entry
    if rules.stop_loss and (price <= entry * (1 - rules.stop_loss) if long else price >= entry * (1 + rules.stop_loss)):
        return "stop_loss"
    if rules.take_profit and (price >= entry * (1 + rules.take_profit) if long else price <= entry * (1 - rules.take_profit)):
        return "take_profit"
    if rules.trailing and (price <= ext * (1 - rules.trailing) if long else price >= ext * (1 + rules.trailing)):
        return "trailing_stop"
    return None
