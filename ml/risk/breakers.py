"""Circuit breakers: an extreme price move or a burst of venue errors halts new orders for a while.

Extreme move: |price / price ``window_ms`` ago - 1| >= ``max_move`` (fraction). Venue errors:
``max_errors`` errors within ``window_ms``. Either trips the breaker for ``cooldown_ms`` from
the trip; the risk manager then treats the account as HALTED (exits still pass).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BreakerParams:
    max_move: float = 0.05
    max_errors: int = 5
    window_ms: int = 60_000
    cooldown_ms: int = 300_000


class CircuitBreaker:
    """Feed prices and venue errors with their times (ms); ask :meth:`tripped`."""

    def __init__(self, params: BreakerParams) -> None:
        self.params = params
        self._prices: deque[tuple[int, float]] = deque()
        self._errors: deque[int] = deque()
        self.until_ms: int | None = None
        self.reason = ""

    def _trip(self, now_ms: int, reason: str) -> str:
        self.until_ms, self.reason = now_ms + self.params.cooldown_ms, reason
        return reason

    def on_price(self, now_ms: int, price: float) -> str | None:
        """Record a price; returns the trip reason when this price trips the breaker."""
        if price <= 0:
            return None
        self._prices.append((now_ms, price))
        while self._prices and self._prices[0][0] < now_ms - self.params.window_ms:
            self._prices.popleft()
        oldest = self._prices[0][1]
        move = price / oldest - 1
        if abs(move) >= self.params.max_move:
            self._prices.clear()
            self._prices.append((now_ms, price))
            return self._trip(now_ms, f"price moved {move:+.2%} within {self.params.window_ms // 1000} s")
        return None

    def on_error(self, now_ms: int, detail: str = "") -> str | None:
        """Record a venue error; returns the trip reason when it trips the breaker."""
        self._errors.append(now_ms)
        while self._errors and self._errors[0] < now_ms - self.params.window_ms:
            self._errors.popleft()
        if len(self._errors) >= self.params.max_errors:
            self._errors.clear()
            return self._trip(now_ms, f"{self.params.max_errors} venue errors within "
                                      f"{self.params.window_ms // 1000} s {detail}".strip())
        return None

    def tripped(self, now_ms: int) -> bool:
        return self.until_ms is not None and now_ms < self.until_ms
