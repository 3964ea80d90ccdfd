"""The per-account risk manager the engine runs each decision cycle: state, limits, breakers.

One cycle (one exchange second): :meth:`RiskManager.cycle` with the mark-to-market equity,
position, mark price and the kill switch read from the database; it rolls the UTC day, updates
the peak equity, feeds the circuit breaker and sets the trading state (``limits.next_state``).
Every order of that cycle then goes through :meth:`RiskManager.check`, which applies
``limits.check_order`` and remembers accepted orders for the per-minute limit. A kill switch
set before a cycle therefore halts every new order of that cycle; exits still pass.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from ml.risk.breakers import BreakerParams, CircuitBreaker
from ml.risk.limits import (
    MINUTE_MS,
    AccountRisk,
    Capacity,
    RiskLimits,
    TradingState,
    Verdict,
    capacity,
    check_order,
    next_state,
)

logger = logging.getLogger(__name__)
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change of one cycle (for the record): from, to, reason."""

    before: TradingState
    after: TradingState
    reason: str


class RiskManager:
    """State of one account's risk between cycles (module docstring). Equity in USD, ms times."""

    def __init__(self, limits: RiskLimits, *, equity: float, breaker: BreakerParams | None = None,
                 state: TradingState = TradingState.ACTIVE, peak_equity: float | None = None,
                 day_start_equity: float | None = None, day: int | None = None) -> None:
        self.limits = limits
        self.breaker = CircuitBreaker(breaker or BreakerParams())
        self.state = state
        self.reason = ""
        self.equity = equity
        self.peak_equity = max(peak_equity or equity, equity)
        self.day_start_equity = day_start_equity if day_start_equity is not None else equity
        self.day = day
        self.position = 0.0
        self.orders: deque[int] = deque()

    def cycle(self, *, now_ms: int, equity: float, position: float, price: float | None, kill_switch: bool
              ) -> Transition | None:
        """Start a decision cycle; returns the state transition it caused, if any."""
        day = now_ms // DAY_MS
        if self.day is None or day != self.day:
            self.day, self.day_start_equity = day, equity
        self.equity, self.position = equity, position
        self.peak_equity = max(self.peak_equity, equity)
        if price:
            self.breaker.on_price(now_ms, price)
        while self.orders and self.orders[0] <= now_ms - MINUTE_MS:
            self.orders.popleft()
        state, reason = next_state(kill_switch=kill_switch, breaker_tripped=self.breaker.tripped(now_ms),
                                   limits=self.limits, account=self.snapshot())
        if reason == "circuit breaker":
            reason = f"circuit breaker: {self.breaker.reason}"
        if state == self.state:
            return None
        before, self.state, self.reason = self.state, state, reason
        return Transition(before, state, reason)

    def snapshot(self) -> AccountRisk:
        return AccountRisk(position=self.position, equity=self.equity, peak_equity=self.peak_equity,
                           day_start_equity=self.day_start_equity, recent_orders_ms=tuple(self.orders), state=self.state)

    def check(self, *, side: str, quantity: float, price: float, now_ms: int) -> Verdict:
        """Check an order of this cycle; an approved one counts toward the per-minute limit and
        moves the expected position (fills are confirmed later by the venue)."""
        verdict = self.verdict(side=side, quantity=quantity, price=price, now_ms=now_ms)
        if verdict.approved:
            self.accept(side=side, quantity=quantity, now_ms=now_ms)
        return verdict

    def verdict(self, *, side: str, quantity: float, price: float, now_ms: int) -> Verdict:
        """What :meth:`check` would answer, changing nothing (``limits.check_order``; it raises
        ValueError for a bad side or a non-positive quantity or price)."""
        return check_order(limits=self.limits, account=self.snapshot(), side=side, quantity=quantity,
                           price=price, now_ms=now_ms)

    def capacity(self, *, side: str, price: float, now_ms: int) -> Capacity:
        """The largest order of ``side`` this cycle's :meth:`verdict` approves (``limits.capacity``)."""
        return capacity(limits=self.limits, account=self.snapshot(), side=side, price=price, now_ms=now_ms)

    def accept(self, *, side: str, quantity: float, now_ms: int) -> None:
        """Count an order approved by :meth:`verdict` and sent: toward the per-minute limit, and
        into the expected position. ``check`` = ``verdict`` + ``accept`` when approved."""
        self.orders.append(now_ms)
        self.position += quantity if side == "BUY" else -quantity

    def venue_error(self, now_ms: int, detail: str = "") -> str | None:
        """Count a venue error toward the error circuit breaker; returns the trip reason if it tripped."""
        return self.breaker.on_error(now_ms, detail)

    def record_order(self, now_ms: int) -> None:
        """Count an order accepted earlier (e.g. found stored on a re-run) toward the per-minute limit."""
        self.orders.append(now_ms)
