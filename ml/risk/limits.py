"""Pre-trade limits and the trading state machine (ACTIVE / REDUCING / HALTED).

States follow nautilus_trader's risk engine: ACTIVE lets every order through the limits;
REDUCING lets only orders that bring |position| down; HALTED refuses every new order except
exits (reducing orders), so a kill switch stops new risk at the next decision while a position
can still be closed. Cancels are not orders: they always pass.

Rules checked by :func:`check_order`, in order (the first that fails names the rejection):

1. ``max_order_notional``: quantity * price <= limit (USD), every order, exits included.
2. ``max_orders_per_minute``: fewer than the limit orders accepted in the last 60 s, every order.
3. ``state``: HALTED or REDUCING refuse orders that do not reduce |position|.
4. ``daily_loss``: a risk-increasing order is refused once today's PnL <= -daily_loss_limit (USD).
5. ``max_drawdown``: ... once (peak - equity) / peak >= max_drawdown (fraction).
6. ``max_position``: |position after the order| <= max_position (base units) unless the order
   reduces |position|.
A reducing order is one on the opposite side of the position with quantity <= |position|
(it never flips the sign).

:func:`capacity` answers the converse question: the largest quantity of one side that
:func:`check_order` approves now (0, with the rule that binds, when none), so that a caller
sizes its order down to what passes instead of sending one that must be rejected.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)

MINUTE_MS = 60_000


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """``max_position`` base units, ``max_order_notional`` USD, ``max_orders_per_minute`` count,
    ``daily_loss_limit`` USD (> 0), ``max_drawdown`` fraction of peak equity in (0, 1]."""

    max_position: float = 1.0
    max_order_notional: float = 5_000.0
    max_orders_per_minute: int = 10
    daily_loss_limit: float = 500.0
    max_drawdown: float = 0.2


@dataclass(frozen=True, slots=True)
class AccountRisk:
    """What the limits need to know about an account now: signed position (base units),
    equity, peak equity and equity at the start of the UTC day (USD), the accept times (ms) of
    recent orders, and the trading state."""

    position: float = 0.0
    equity: float = 10_000.0
    peak_equity: float = 10_000.0
    day_start_equity: float = 10_000.0
    recent_orders_ms: Sequence[int] = ()
    state: TradingState = TradingState.ACTIVE


@dataclass(frozen=True, slots=True)
class Verdict:
    approved: bool
    rule: str = ""
    reason: str = ""


APPROVED = Verdict(True)


def is_reducing(position: float, side: str, quantity: float) -> bool:
    """True when a ``side`` order of ``quantity`` (> 0) brings |position| down without flipping."""
    if position > 0:
        return side == "SELL" and quantity <= position + 1e-12
    if position < 0:
        return side == "BUY" and quantity <= -position + 1e-12
    return False


def drawdown(equity: float, peak: float) -> float:
    """(peak - equity) / peak, 0 when peak <= 0 or equity >= peak."""
    return max(0.0, (peak - equity) / peak) if peak > 0 else 0.0


def check_order(*, limits: RiskLimits, account: AccountRisk, side: str, quantity: float, price: float,
                now_ms: int) -> Verdict:
    """Check one order of ``quantity`` base units (> 0) at expected ``price`` (USD) (module docstring).

    Raises ValueError for a side other than BUY/SELL or a non-positive quantity or price."""
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    if not (quantity > 0 and price > 0):
        raise ValueError(f"quantity and price must be > 0, got {quantity}, {price}")
    notional = quantity * price
    if notional > limits.max_order_notional:
        return Verdict(False, "max_order_notional",
                       f"order notional {notional:.2f} USD > max {limits.max_order_notional:.2f} USD")
    recent = sum(1 for t in account.recent_orders_ms if now_ms - MINUTE_MS < t <= now_ms)
    if recent >= limits.max_orders_per_minute:
        return Verdict(False, "max_orders_per_minute",
                       f"{recent} orders in the last minute, max {limits.max_orders_per_minute}")
    if is_reducing(account.position, side, quantity):
        return APPROVED
    if account.state != TradingState.ACTIVE:
        return Verdict(False, "state", f"trading state {account.state.value}: only exits pass")
    day_pnl = account.equity - account.day_start_equity
    if day_pnl <= -limits.daily_loss_limit:
        return Verdict(False, "daily_loss", f"daily PnL {day_pnl:.2f} USD <= -{limits.daily_loss_limit:.2f} USD")
    dd = drawdown(account.equity, account.peak_equity)
    if dd >= limits.max_drawdown:
        return Verdict(False, "max_drawdown", f"drawdown {dd:.2%} >= max {limits.max_drawdown:.2%}")
    after = account.position + (quantity if side == "BUY" else -quantity)
    if abs(after) > limits.max_position + 1e-12:
        return Verdict(False, "max_position", f"position after order {after:.8f} exceeds max {limits.max_position:.8f}")
    return APPROVED


def next_state(*, kill_switch: bool, breaker_tripped: bool, limits: RiskLimits, account: AccountRisk) -> tuple[TradingState, str]:
    """The trading state implied now, with its reason: the kill switch or a tripped circuit
    breaker -> HALTED; the daily loss limit or max drawdown reached -> REDUCING; else ACTIVE."""
    if kill_switch:
        return TradingState.HALTED, "kill switch"
    if breaker_tripped:
        return TradingState.HALTED, "circuit breaker"
    if account.equity - account.day_start_equity <= -limits.daily_loss_limit:
        return TradingState.REDUCING, "daily loss limit reached"
    if drawdown(account.equity, account.peak_equity) >= limits.max_drawdown:
        return TradingState.REDUCING, "max drawdown reached"
    return TradingState.ACTIVE, ""


@dataclass(frozen=True, slots=True)
class Capacity:
    """The largest ``quantity`` (base units, >= 0) of one side that the limits accept now, and
    the ``rule`` that binds it with a readable ``reason`` (the rule names of :func:`check_order`)."""

    quantity: float
    rule: str
    reason: str


def capacity(*, limits: RiskLimits, account: AccountRisk, side: str, price: float, now_ms: int) -> Capacity:
    """The largest order of ``side`` at ``price`` (USD, > 0) that :func:`check_order` approves:
    any quantity in (0, capacity] passes (tests/ml/risk/test_properties.py checks it).

    A reducing order (opposite side, up to |position|) passes every rule but the notional and
    per-minute ones; past |position|, or on the side of the position, the state, daily loss,
    drawdown and max position rules apply. Raises ValueError for a bad side or price <= 0."""
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    if not price > 0:
        raise ValueError(f"price must be > 0, got {price}")
    recent = sum(1 for t in account.recent_orders_ms if now_ms - MINUTE_MS < t <= now_ms)
    if recent >= limits.max_orders_per_minute:
        return Capacity(0.0, "max_orders_per_minute",
                        f"{recent} orders in the last minute, max {limits.max_orders_per_minute}")
    position = account.position
    reducible = abs(position) if (position > 0 and side == "SELL") or (position < 0 and side == "BUY") else 0.0
    blocked = _blocked(limits, account)
    if blocked is not None:
        quantity, rule, reason = reducible, blocked[0], f"{blocked[1]}: only exits pass"
    else:
        room = limits.max_position - (abs(position) if reducible == 0 else -abs(position))
        quantity = max(0.0, room)  # reducing side: back to flat, then up to max_position the other way
        rule, reason = "max_position", (f"position {position:.8f} of max {limits.max_position:.8f}"
                                        if quantity <= 0 else "")
    cap = limits.max_order_notional / price * (1 - 1e-12)  # so that cap * price never rounds above the limit
    if cap < quantity:
        return Capacity(cap, "max_order_notional", f"max {limits.max_order_notional:.2f} USD per order")
    return Capacity(quantity, rule, reason)


def _blocked(limits: RiskLimits, account: AccountRisk) -> tuple[str, str] | None:
    """(rule, reason) of the first rule that refuses every risk-increasing order, or None."""
    if account.state != TradingState.ACTIVE:
        return "state", f"trading state {account.state.value}"
    day_pnl = account.equity - account.day_start_equity
    if day_pnl <= -limits.daily_loss_limit:
        return "daily_loss", f"daily PnL {day_pnl:.2f} USD <= -{limits.daily_loss_limit:.2f} USD"
    dd = drawdown(account.equity, account.peak_equity)
    if dd >= limits.max_drawdown:
        return "max_drawdown", f"drawdown {dd:.2%} >= max {limits.max_drawdown:.2%}"
    return None


def spot_capacity(*, side: str, position: float, cash: float, price: float, fee_rate: float) -> Capacity:
    """What a spot account can trade at all: it is long-only, so a SELL closes at most the long it
    holds (``position``, base units, pending orders included) and a BUY spends at most ``cash``
    (USD) including the taker fee (``fee_rate``, fraction). Raises ValueError for price <= 0."""
    if not price > 0:
        raise ValueError(f"price must be > 0, got {price}")
    if side == "SELL":
        held = max(0.0, position)
        return Capacity(held, "spot_inventory", f"spot is long-only: {held:.8f} held to sell")
    room = max(0.0, cash) / (price * (1 + max(0.0, fee_rate)))
    return Capacity(room, "spot_cash", f"cash {cash:.2f} USD buys {room:.8f}")
