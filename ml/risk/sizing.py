"""Position sizing: fixed fraction, volatility (ATR) based, capped Kelly. Quantities in base units.

- Fixed fraction: notional = fraction * equity; quantity = notional / price.
- ATR: risk ``risk_fraction`` of equity on a stop ``atr_multiple`` ATRs away:
  quantity = risk_fraction * equity / (atr_multiple * ATR) (the "percent volatility" model of
  Van Tharp, *Trade Your Way to Financial Freedom*, ch. 14). ATR is Wilder's average true range,
  TR_t = max(H_t - L_t, |H_t - C_{t-1}|, |L_t - C_{t-1}|), ATR = Wilder smoothing over n
  (Wilder 1978, *New Concepts in Technical Trading Systems*).
- Kelly: f* = p - (1 - p) / b for win probability p and payoff ratio b (mean win / mean loss)
  (Kelly 1956; Thorp 2006), clipped to [0, cap]; notional = f * equity.
Every size is finally capped by ``max_notional`` (USD) and floored to ``lot`` (base units).
"""
from __future__ import annotations

import math
from collections.abc import Sequence


def _finish(quantity: float, price: float, max_notional: float | None, lot: float) -> float:
    if max_notional is not None:
        quantity = min(quantity, max_notional / price)
    if quantity <= 0 or not math.isfinite(quantity):
        return 0.0
    return math.floor(quantity / lot + 1e-9) * lot if lot > 0 else quantity


def fixed_fraction(*, equity: float, fraction: float, price: float, max_notional: float | None = None,
                   lot: float = 1e-4) -> float:
    """Base units for ``fraction`` of ``equity`` (USD) at ``price``. Raises ValueError for price <= 0."""
    if price <= 0:
        raise ValueError(f"price must be > 0, got {price}")
    return _finish(max(0.0, fraction) * equity / price, price, max_notional, lot)


def atr(highs: Sequence[float], lows: Sequence[float], closes: Sequence[float], n: int = 14) -> float | None:
    """Wilder's ATR over the last bars (module docstring); None with fewer than n + 1 bars."""
    if len(closes) < n + 1 or not (len(highs) == len(lows) == len(closes)):
        return None
    trs = [max(highs[i] - lows[i], abs(highs[i] - closes[i - 1]), abs(lows[i] - closes[i - 1]))
           for i in range(1, len(closes))]
    value = sum(trs[:n]) / n
    for tr in trs[n:]:
        value = (value * (n - 1) + tr) / n
    return value


def atr_size(*, equity: float, risk_fraction: float, atr_value: float | None, atr_multiple: float, price: float,
             max_notional: float | None = None, lot: float = 1e-4) -> float:
    """Base units risking ``risk_fraction`` of equity on a stop ``atr_multiple`` ATRs away; 0 when the
    ATR is unknown or not positive. Raises ValueError for price <= 0."""
    if price <= 0:
        raise ValueError(f"price must be > 0, got {price}")
    if not atr_value or atr_value <= 0 or atr_multiple <= 0:
        return 0.0
    return _finish(max(0.0, risk_fraction) * equity / (atr_multiple * atr_value), price, max_notional, lot)


def kelly_fraction(*, win_rate: float, payoff: float, cap: float) -> float:
    """f* = p - (1 - p) / b clipped to [0, cap]; 0 when b <= 0."""
    if payoff <= 0:
        return 0.0
    return min(max(win_rate - (1 - win_rate) / payoff, 0.0), cap)


def kelly_size(*, equity: float, win_rate: float, payoff: float, cap: float, price: float,
               max_notional: float | None = None, lot: float = 1e-4) -> float:
    """Base units for the capped Kelly fraction of equity at ``price``."""
    f = kelly_fraction(win_rate=win_rate, payoff=payoff, cap=cap)
    return fixed_fraction(equity=equity, fraction=f, price=price, max_notional=max_notional, lot=lot)
