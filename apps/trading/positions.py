"""Average-cost position accounting in Decimal (USD, base units)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(slots=True)
class PositionState:
    """Signed quantity (base units), average entry price, realized PnL after fees and fees (USD)."""

    quantity: Decimal = ZERO
    average_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO

    def apply_fill(self, *, side: str, quantity: Decimal, price: Decimal, fee: Decimal) -> None:
        """Apply one fill. Reducing trades realize (price - average) * closed quantity; fees are
        subtracted from realized PnL. A fill that crosses zero opens the rest at ``price``."""
        signed = quantity if side == "BUY" else -quantity
        self.fees_paid += fee
        self.realized_pnl -= fee
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            total = abs(self.quantity) + quantity
            self.average_price = (abs(self.quantity) * self.average_price + quantity * price) / total
            self.quantity += signed
            return
        closed = min(abs(self.quantity), quantity)
        direction = Decimal(1) if self.quantity > 0 else Decimal(-1)
        self.realized_pnl += (price - self.average_price) * closed * direction
        self.quantity += signed
        if self.quantity == 0:
            self.average_price = ZERO
        elif (self.quantity > 0) != (direction > 0):
            self.average_price = price

    def unrealized_pnl(self, mark_price: Decimal) -> Decimal:
        """Open PnL at ``mark_price`` (USD)."""
        return (mark_price - self.average_price) * self.quantity if self.quantity else ZERO
